"""The organiser console's lists and switches: every event with its sales, gates with their last
contact and revocation, users found by e-mail, transfers awaiting a decision. Admin role only."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from central.clients.models import Event, Gate
from central.orchestrator.answer_models import (
    AccountList,
    AdminEventList,
    GateList,
    GateRevoked,
    TransferList,
)
from central.orchestrator.answers import Paged, Pagination, answers
from central.orchestrator.auth import Principal, authenticate, require_role
from central.orchestrator.keys import backends_key, gate_cache_key
from central.orchestrator.queries import (
    AdminGatesQuery,
    AdminTransfersQuery,
    AdminUsersQuery,
    PageQuery,
    pagination,
)
from central.orchestrator.routes.mine import transfer_items
from central.orchestrator.verification import parse_time
from central.web import parse_query, parse_uuid

routes = web.RouteTableDef()


async def _admin(request: web.Request) -> Principal:
    principal = await authenticate(request, request.app[backends_key])
    require_role(principal, "admin")
    return principal


def event_status(event: Event, now: float) -> str:
    """Where the event stands: a status the events service keeps (e.g. CANCELLED) wins; else
    UPCOMING before its doors open, OPEN while they are, ENDED after they close."""
    stored = event.get("status")
    if isinstance(stored, str) and stored not in ("", "ACTIVE", "SCHEDULED"):
        return stored
    opens, closes = parse_time(event.get("doors_open")), parse_time(event.get("doors_close"))
    if closes is not None and now > closes:
        return "ENDED"
    if opens is not None and now >= opens:
        return "OPEN"
    return "UPCOMING"


@routes.get("/api/admin/events")
@answers(AdminEventList, paged=True)
async def list_events(request: web.Request) -> Paged[AdminEventList]:
    await _admin(request)
    query = parse_query(request, PageQuery)
    backends = request.app[backends_key]
    listed = await backends.events.events_page(query.page, query.per_page)
    events = listed.items
    ids = [e["event_id"] for e in events]
    counts: dict[str, dict[str, int]] = {}
    stats: dict[str, Any] = {}
    if ids:
        counts = await backends.inventory.seat_counts(ids)
        stats = await backends.orders.stats_by_event(ids)
    now = time.time()
    items = []
    for event in events:
        by_status = counts.get(event["event_id"], {})
        venue = event.get("venue") or {}
        items.append(
            {
                "event_id": event["event_id"],
                "name": event["name"],
                "venue": {"venue_id": venue.get("venue_id"), "name": venue.get("name")},
                "hall_id": event["hall_id"],
                "event_date": event["event_date"],
                "doors_open": event.get("doors_open"),
                "doors_close": event.get("doors_close"),
                "status": event_status(event, now),
                "total": sum(by_status.values()),
                # a checked-in ticket was sold too
                "sold": by_status.get("SOLD", 0) + by_status.get("CHECKED_IN", 0),
                "held": by_status.get("HELD", 0),
                "available": by_status.get("AVAILABLE", 0),
                "checked_in": by_status.get("CHECKED_IN", 0),
                "revenue": int(stats.get(event["event_id"], {}).get("revenue", 0)),
            }
        )
    return Paged(
        AdminEventList.model_validate(items),
        Pagination.model_validate(pagination(query.page, query.per_page, listed.total)),
    )


def gate_item(gate: Gate) -> dict[str, Any]:
    """Never the device token: it is shown once, when the gate is added."""
    return {
        "gate_id": gate["gate_id"],
        "name": gate["name"],
        "hall_id": gate["hall_id"],
        "enabled": bool(gate["enabled"]),
        "last_seen_at": gate.get("last_seen_at"),
        "created_at": gate.get("created_at"),
    }


@routes.get("/api/admin/gates")
@answers(GateList)
async def list_gates(request: web.Request) -> GateList:
    await _admin(request)
    query = parse_query(request, AdminGatesQuery)
    gates = await request.app[backends_key].events.gates(query.hall_id)
    return GateList.model_validate([gate_item(g) for g in gates])


@routes.delete("/api/admin/gates/{gate_id}")
@answers(GateRevoked)
async def revoke_gate(request: web.Request) -> GateRevoked:
    """From the next request on, the gate's device token gets 401 GATE_REVOKED here (its cache
    entry dropped), and within GATE_CACHE_TTL at every other orchestrator process."""
    await _admin(request)
    gate_id = parse_uuid(request.match_info["gate_id"], "gate_id")
    gate = await request.app[backends_key].events.set_gate_enabled(gate_id, False)
    request.app[gate_cache_key].forget_where(lambda g: g is not None and g["gate_id"] == gate_id)
    return GateRevoked.model_validate({**gate_item(gate), "revoked": True})


@routes.get("/api/admin/users")
@answers(AccountList)
async def find_users(request: web.Request) -> AccountList:
    await _admin(request)
    query = parse_query(request, AdminUsersQuery)
    users = await request.app[backends_key].users.search_users(query.email.strip(), query.limit)
    return AccountList.model_validate(
        [
            {
                "user_id": u["user_id"],
                "email": u["email"],
                "phone": u.get("phone"),
                "role": u["role"],
                "flagged": bool(u["is_flagged"]),
                "verified": bool(u["is_verified"]),
                "credit_balance": int(u["credit_balance"]),
                "created_at": u.get("created_at"),
            }
            for u in users
        ]
    )


@routes.get("/api/admin/transfers")
@answers(TransferList, paged=True)
async def list_transfers(request: web.Request) -> Paged[TransferList]:
    await _admin(request)
    query = parse_query(request, AdminTransfersQuery)
    page = await request.app[backends_key].orders.transfers_page(
        query.per_page, query.offset, status=query.status.value if query.status else None
    )
    items = await transfer_items(request, page.items, None)
    return Paged(
        TransferList.model_validate(items),
        Pagination.model_validate(pagination(query.page, query.per_page, page.total)),
    )
