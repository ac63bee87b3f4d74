"""The caller's own records, for the attendee app: who I am, my orders, the transfers I am a
party to, my credit history. Each lists only what belongs to the bearer of the token."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from central.clients.models import Transfer
from central.orchestrator import lookups
from central.orchestrator.answer_models import Account, LedgerList, OrderList, TransferList
from central.orchestrator.answers import Paged, Pagination, answers
from central.orchestrator.auth import authenticate
from central.orchestrator.keys import backends_key
from central.orchestrator.queries import PageQuery, TransfersQuery, pagination
from central.orchestrator.saga_requests import runtime_of
from central.web import parse_query

routes = web.RouteTableDef()


@routes.get("/api/me")
@answers(Account)
async def me(request: web.Request) -> Account:
    backends = request.app[backends_key]
    principal = await authenticate(request, backends)
    user = await backends.users.user(principal.user_id)
    return Account.model_validate(
        {
            "user_id": user["user_id"],
            "email": user["email"],
            "phone": user.get("phone"),
            "role": user["role"],
            "flagged": bool(user["is_flagged"]),
            "verified": bool(user["is_verified"]),
            "credit_balance": int(user["credit_balance"]),
            "created_at": user.get("created_at"),
        }
    )


@routes.get("/api/orders")
@answers(OrderList, paged=True)
async def my_orders(request: web.Request) -> Paged[OrderList]:
    backends = request.app[backends_key]
    principal = await authenticate(request, backends)
    query = parse_query(request, PageQuery)
    page = await backends.orders.orders_of(principal.user_id, query.per_page, query.offset)
    rows = page.items
    runtime = runtime_of(request)
    seats = await lookups.seats(backends, (o["seat_id"] for o in rows))
    events = await lookups.events(runtime.events, (o["event_id"] for o in rows))
    items = []
    for order in rows:
        seat = seats.get(order["seat_id"])
        event = events.get(order["event_id"])
        items.append(
            {
                "order_id": order["order_id"],
                "seat_id": order["seat_id"],
                "event": lookups.event_summary(event, order["event_id"]),
                "row": seat.row if seat is not None else None,
                "number": seat.number if seat is not None else None,
                "status": order["status"],
                "credits_charged": order["credits_charged"],
                "created_at": order["created_at"],
                "confirmed_at": order.get("confirmed_at"),
            }
        )
    return Paged(
        OrderList.model_validate(items),
        Pagination.model_validate(pagination(query.page, query.per_page, page.total)),
    )


def transfer_item(
    transfer: Transfer,
    me_id: str | None,
    emails: dict[str, str],
    seats: dict[str, Any],
    events: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """A transfer as the lists show it: the parties by e-mail (never another user's id alone),
    the seat and its event, and whether the caller has confirmed it with their own code."""
    seller, buyer = transfer["seller_user_id"], transfer["buyer_user_id"]
    seat = seats.get(transfer["seat_id"])
    event_id = seat.event_id if seat is not None else ""
    role = "seller" if me_id == seller else "buyer" if me_id == buyer else None
    confirmed = {"seller": transfer["seller_confirmed"], "buyer": transfer["buyer_confirmed"]}
    return {
        "transfer_id": transfer["transfer_id"],
        "seat_id": transfer["seat_id"],
        "event": lookups.event_summary(events.get(event_id), event_id),
        "row": seat.row if seat is not None else None,
        "number": seat.number if seat is not None else None,
        "seller_email": emails.get(seller),
        "buyer_email": emails.get(buyer),
        "credits_amount": transfer["credits_amount"],
        "status": transfer["status"],
        "role": role,
        "i_confirmed": bool(confirmed[role]) if role else None,
        "seller_confirmed": bool(transfer["seller_confirmed"]),
        "buyer_confirmed": bool(transfer["buyer_confirmed"]),
        "dispute_reason": transfer.get("dispute_reason"),
        "created_at": transfer["created_at"],
        "completed_at": transfer.get("completed_at"),
    }


async def transfer_items(
    request: web.Request, rows: list[Transfer], me_id: str | None
) -> list[dict[str, Any]]:
    backends = request.app[backends_key]
    users = [t["seller_user_id"] for t in rows] + [t["buyer_user_id"] for t in rows]
    emails = await lookups.emails(backends, users)
    seats = await lookups.seats(backends, (t["seat_id"] for t in rows))
    events = await lookups.events(runtime_of(request).events, (s.event_id for s in seats.values()))
    return [transfer_item(t, me_id, emails, seats, events) for t in rows]


@routes.get("/api/transfers")
@answers(TransferList, paged=True)
async def my_transfers(request: web.Request) -> Paged[TransferList]:
    backends = request.app[backends_key]
    principal = await authenticate(request, backends)
    query = parse_query(request, TransfersQuery)
    transfers = await backends.orders.transfers_page(
        query.per_page,
        query.offset,
        user_id=principal.user_id,
        role=query.role or None,
        status=query.status.value if query.status else None,
    )
    items = await transfer_items(request, transfers.items, principal.user_id)
    return Paged(
        TransferList.model_validate(items),
        Pagination.model_validate(pagination(query.page, query.per_page, transfers.total)),
    )


@routes.get("/api/credits/history")
@answers(LedgerList, paged=True)
async def credit_history(request: web.Request) -> Paged[LedgerList]:
    backends = request.app[backends_key]
    principal = await authenticate(request, backends)
    query = parse_query(request, PageQuery)
    history = await backends.users.history(principal.user_id, query.page, query.per_page)
    page = history.pagination
    return Paged(
        LedgerList.model_validate(history.items),
        Pagination.model_validate(page) if page is not None else None,
    )
