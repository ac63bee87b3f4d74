"""HTTP routes of the events service (internal: callers hold the internal service credential)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from central.config import Settings
from central.errors import ApiError
from central.events.schema import STEPS
from central.events.store import EventStore, NewEvent, as_utc
from central.web import attach_database, created, make_app, ok, parse_body, parse_query

log = logging.getLogger(__name__)

store_key = web.AppKey("events_store", EventStore)

DOORS_MARGIN = timedelta(hours=6)  # default doors window around the event's start
MIN_YEAR, MAX_YEAR = 2000, 2100  # a plausible event date; anything else is a typo


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _plausible_time(value: datetime) -> datetime:
    # Keeps the doors arithmetic (event_date -/+ 6 h) far from datetime's limits.
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"year must be {MIN_YEAR}..{MAX_YEAR}")
    return value


Time = Annotated[datetime, AfterValidator(_plausible_time)]
NoNul = AfterValidator(_no_nul)
HallId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{0,19}$")]
Category = Annotated[str, StringConstraints(min_length=1, max_length=40), NoNul]
RowLabel = Annotated[str, StringConstraints(min_length=1, max_length=10), NoNul]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]


class Body(BaseModel):
    # Unknown fields are refused so a caller's typo is a 400, not a silently ignored value.
    model_config = ConfigDict(extra="forbid")


class VenueIn(Body):
    name: Name
    address: Annotated[str, StringConstraints(max_length=500), NoNul] | None = None


class NewEventBody(Body):
    event_id: uuid.UUID | None = None
    name: Name
    venue: VenueIn
    hall_id: HallId
    event_date: Time
    doors_open: Time | None = None
    doors_close: Time | None = None
    pricing: Annotated[
        dict[Category, Annotated[StrictInt, Field(ge=0, le=10**9)]],
        Field(min_length=1, max_length=50),
    ]
    category_rows: (
        Annotated[
            dict[Category, Annotated[list[RowLabel], Field(max_length=1000)]],
            Field(max_length=50),
        ]
        | None
    ) = None
    total_seats: Annotated[StrictInt, Field(ge=1, le=100_000)]


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=20, ge=1, le=100)
    hall_id: HallId | None = None


class NewGate(Body):
    hall_id: HallId
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
    ]


class GateAuth(Body):
    device_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class GatePatch(Body):
    enabled: StrictBool


class GatesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hall_id: HallId | None = None


def bad(field: str, message: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", f"{field}: {message}", {"field": field})


def path_id(request: web.Request, name: str) -> str:
    """A UUID path segment as canonical text; a bad one is a 400 naming it like a body field."""
    try:
        return str(uuid.UUID(request.match_info[name]))
    except ValueError:
        raise ApiError("INVALID_UUID", f"{name}: not a valid UUID", {"field": name}) from None


def new_event(body: NewEventBody) -> NewEvent:
    """Apply the defaults and the cross-field rules a single field's type cannot express.

    A time without a zone is read as UTC: every time in this system is UTC.
    """
    event_date = as_utc(body.event_date)
    doors_open = as_utc(body.doors_open) if body.doors_open else event_date - DOORS_MARGIN
    doors_close = as_utc(body.doors_close) if body.doors_close else event_date + DOORS_MARGIN
    if doors_open >= doors_close:
        field = "doors_close" if body.doors_close is not None else "doors_open"
        raise bad(field, "doors_open must be before doors_close")
    rows = body.category_rows or {}
    for category in rows:
        if category not in body.pricing:
            raise bad(f"category_rows.{category}", "category has no price in pricing")
    return NewEvent(
        event_id=str(body.event_id or uuid.uuid4()),
        name=body.name,
        venue_name=body.venue.name,
        venue_address=body.venue.address,
        hall_id=body.hall_id,
        event_date=event_date,
        doors_open=doors_open,
        doors_close=doors_close,
        pricing=dict(body.pricing),
        category_rows={k: list(v) for k, v in rows.items()},
        total_seats=body.total_seats,
    )


async def post_event(request: web.Request) -> web.Response:
    body = await parse_body(request, NewEventBody)
    event, was_created = await request.app[store_key].create_event(new_event(body))
    return created(event) if was_created else ok(event)


async def delete_event(request: web.Request) -> web.Response:
    event_id = path_id(request, "event_id")
    return ok(
        {"event_id": event_id, "deleted": await request.app[store_key].delete_event(event_id)}
    )


async def list_events(request: web.Request) -> web.Response:
    query = parse_query(request, EventsQuery)
    page = await request.app[store_key].list_events(
        page=query.page, per_page=query.per_page, hall_id=query.hall_id
    )
    return ok(page.items, pagination=page.pagination())


async def get_event(request: web.Request) -> web.Response:
    event_id = path_id(request, "event_id")
    return ok(await request.app[store_key].get_event(event_id))


async def post_gate(request: web.Request) -> web.Response:
    body = await parse_body(request, NewGate)
    return created(await request.app[store_key].create_gate(body.hall_id, body.name))


async def authenticate_gate(request: web.Request) -> web.Response:
    body = await parse_body(request, GateAuth)
    return ok(await request.app[store_key].authenticate_gate(body.device_token))


async def list_gates(request: web.Request) -> web.Response:
    query = parse_query(request, GatesQuery)
    return ok(await request.app[store_key].list_gates(query.hall_id))


async def get_gate(request: web.Request) -> web.Response:
    gate_id = path_id(request, "gate_id")
    return ok(await request.app[store_key].get_gate(gate_id))


async def patch_gate(request: web.Request) -> web.Response:
    gate_id = path_id(request, "gate_id")
    body = await parse_body(request, GatePatch)
    return ok(await request.app[store_key].set_gate_enabled(gate_id, body.enabled))


class EventStatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["CANCELLING", "CANCELLED"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


async def post_status(request: web.Request) -> web.Response:
    event_id = path_id(request, "event_id")
    body = await parse_body(request, EventStatusBody)
    return ok(await request.app[store_key].set_status(event_id, body.status, body.reason))


def create_app(settings: Settings) -> web.Application:
    app = make_app("events", internal_token=settings.secret("internal_token"))

    def open_store(engine: AsyncEngine) -> None:
        app[store_key] = EventStore(engine)

    attach_database(app, settings.database_url_for("events"), STEPS, open_store)
    app.router.add_post("/events", post_event)
    app.router.add_get("/events", list_events)
    app.router.add_get("/events/{event_id}", get_event)
    app.router.add_delete("/events/{event_id}", delete_event)
    app.router.add_post("/events/{event_id}/status", post_status)
    app.router.add_post("/gates", post_gate)
    app.router.add_get("/gates", list_gates)
    app.router.add_post("/gates/authenticate", authenticate_gate)
    app.router.add_get("/gates/{gate_id}", get_gate)
    app.router.add_patch("/gates/{gate_id}", patch_gate)
    return app
