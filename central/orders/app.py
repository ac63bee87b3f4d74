"""HTTP routes of the orders service (internal: callers hold the internal service credential)."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy.ext.asyncio import AsyncEngine

from central.config import Settings
from central.errors import ApiError
from central.orders.schema import STEPS
from central.orders.states import OrderStatus, TransferStatus
from central.orders.store import OrderStore
from central.web import (
    attach_database,
    created,
    make_app,
    ok,
    parse_body,
    parse_query,
)

log = logging.getLogger(__name__)

store_key = web.AppKey("orders_store", OrderStore)

MAX_CREDITS = 10**12  # far above any real price, well inside BIGINT
Credits = Annotated[StrictInt, Field(ge=0, le=MAX_CREDITS)]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]


class Body(BaseModel):
    # Unknown fields are refused so a caller's typo is a 400, not a silently ignored value.
    model_config = ConfigDict(extra="forbid")


class NewOrder(Body):
    order_id: uuid.UUID
    user_id: uuid.UUID
    seat_id: uuid.UUID
    event_id: uuid.UUID
    credits_charged: Credits
    hold_id: uuid.UUID | None = None


class OrderTransition(Body):
    to: Literal["CONFIRMED", "FAILED", "REFUNDED"]
    compensation: StrictBool = False
    reason: Reason | None = None


class NewTransfer(Body):
    transfer_id: uuid.UUID
    seat_id: uuid.UUID
    seller_user_id: uuid.UUID
    buyer_user_id: uuid.UUID
    credits_amount: Credits
    initiated_by: Literal["SELLER", "BUYER"]


class TransferTransition(Body):
    to: TransferStatus
    reason: Reason | None = None


class ConfirmParty(Body):
    party: Literal["seller", "buyer"]


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10**8)


class OrderQuery(Limit):
    seat_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    status: OrderStatus | None = None


class TransferQuery(Limit):
    seat_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    # with user_id: only the transfers in which that user is this party
    role: Literal["seller", "buyer"] | None = None
    status: TransferStatus | None = None


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: uuid.UUID


class EventsStatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # comma-separated: one round trip for a page of the console's event list
    event_ids: Annotated[str, Field(min_length=36, max_length=100 * 37)]

    def ids(self) -> list[str]:
        try:
            return [str(uuid.UUID(part)) for part in self.event_ids.split(",")]
        except ValueError:
            raise ApiError(
                "INVALID_UUID", "event_ids: not a list of UUIDs", {"field": "event_ids"}
            ) from None


def path_id(request: web.Request, name: str) -> str:
    """A UUID path segment as canonical text; a bad one is a 400 naming it like a body field."""
    try:
        return str(uuid.UUID(request.match_info[name]))
    except ValueError:
        raise ApiError("INVALID_UUID", f"{name}: not a valid UUID", {"field": name}) from None


def _ids(model: BaseModel) -> dict[str, object]:
    """A validated body as column values: UUIDs as canonical text, enums as their value."""
    out: dict[str, object] = {}
    for name, value in model.model_dump().items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        out[name] = value
    return out


async def post_order(request: web.Request) -> web.Response:
    body = await parse_body(request, NewOrder)
    result = await request.app[store_key].create_order(_ids(body))
    return created(result.record) if result.created else ok(result.record)


async def get_order(request: web.Request) -> web.Response:
    order_id = path_id(request, "order_id")
    return ok(await request.app[store_key].get_order(order_id))


async def list_orders(request: web.Request) -> web.Response:
    query = parse_query(request, OrderQuery)
    filters = {
        k: str(v) for k, v in _ids(query).items() if v is not None and k not in ("limit", "offset")
    }
    rows, total = await request.app[store_key].list_orders(filters, query.limit, query.offset)
    return ok(rows, pagination={"total": total, "limit": query.limit, "offset": query.offset})


async def transition_order(request: web.Request) -> web.Response:
    order_id = path_id(request, "order_id")
    body = await parse_body(request, OrderTransition)
    order = await request.app[store_key].transition_order(
        order_id, OrderStatus(body.to), compensation=body.compensation, reason=body.reason
    )
    return ok(order)


async def stats(request: web.Request) -> web.Response:
    query = parse_query(request, StatsQuery)
    return ok(await request.app[store_key].stats(str(query.event_id)))


async def events_stats(request: web.Request) -> web.Response:
    query = parse_query(request, EventsStatsQuery)
    return ok(await request.app[store_key].stats_by_event(query.ids()))


async def post_transfer(request: web.Request) -> web.Response:
    body = await parse_body(request, NewTransfer)
    if body.seller_user_id == body.buyer_user_id:
        raise ApiError("SELF_TRANSFER", "seller and buyer are the same user")
    result = await request.app[store_key].create_transfer(_ids(body))
    return created(result.record) if result.created else ok(result.record)


async def get_transfer(request: web.Request) -> web.Response:
    transfer_id = path_id(request, "transfer_id")
    return ok(await request.app[store_key].get_transfer(transfer_id))


async def list_transfers(request: web.Request) -> web.Response:
    query = parse_query(request, TransferQuery)
    if query.role is not None and query.user_id is None:
        raise ApiError("VALIDATION_ERROR", "role: needs user_id", {"field": "role"})
    rows, total = await request.app[store_key].list_transfers(
        seat_id=str(query.seat_id) if query.seat_id else None,
        user_id=str(query.user_id) if query.user_id else None,
        role=query.role,
        status=query.status.value if query.status else None,
        limit=query.limit,
        offset=query.offset,
    )
    return ok(rows, pagination={"total": total, "limit": query.limit, "offset": query.offset})


async def transition_transfer(request: web.Request) -> web.Response:
    transfer_id = path_id(request, "transfer_id")
    body = await parse_body(request, TransferTransition)
    if body.to is TransferStatus.DISPUTED and body.reason is None:
        raise ApiError("VALIDATION_ERROR", "reason: a dispute needs a reason", {"field": "reason"})
    transfer = await request.app[store_key].transition_transfer(
        transfer_id, body.to, reason=body.reason
    )
    return ok(transfer)


async def confirm_party(request: web.Request) -> web.Response:
    transfer_id = path_id(request, "transfer_id")
    body = await parse_body(request, ConfirmParty)
    return ok(await request.app[store_key].confirm_party(transfer_id, body.party))


def create_app(settings: Settings) -> web.Application:
    app = make_app("orders", internal_token=settings.secret("internal_token"))

    def open_store(engine: AsyncEngine) -> None:
        app[store_key] = OrderStore(engine)

    attach_database(app, settings.database_url_for("orders"), STEPS, open_store)
    app.router.add_post("/orders", post_order)
    app.router.add_get("/orders", list_orders)
    app.router.add_get("/orders/{order_id}", get_order)
    app.router.add_post("/orders/{order_id}/transition", transition_order)
    app.router.add_get("/stats", stats)
    app.router.add_get("/stats/events", events_stats)
    app.router.add_post("/transfers", post_transfer)
    app.router.add_get("/transfers", list_transfers)
    app.router.add_get("/transfers/{transfer_id}", get_transfer)
    app.router.add_post("/transfers/{transfer_id}/transition", transition_transfer)
    app.router.add_post("/transfers/{transfer_id}/confirm-party", confirm_party)
    return app
