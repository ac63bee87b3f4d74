"""Public event listing and detail: event data from events, seat state from inventory."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from central.clients.models import Event
from central.orchestrator.answer_models import EventDetail, PublicEventList
from central.orchestrator.answers import Paged, Pagination, answers
from central.orchestrator.keys import backends_key
from central.orchestrator.schemas import EventsQuery
from central.web import parse_query, parse_uuid

routes = web.RouteTableDef()


def public_event(event: Event, counts: dict[str, int] | None) -> dict[str, Any]:
    venue = event.get("venue") or {}
    return {
        "event_id": event["event_id"],
        "name": event["name"],
        "venue": {"venue_id": venue.get("venue_id"), "name": venue.get("name")},
        "hall_id": event["hall_id"],
        "event_date": event["event_date"],
        "doors_open": event.get("doors_open"),
        "doors_close": event.get("doors_close"),
        "total_seats": event.get("total_seats"),
        "available_seats": (counts or {}).get("AVAILABLE", 0),
        "pricing": event.get("pricing", {}),
        # SCHEDULED, CANCELLING or CANCELLED (an admin's cancellation refunds every ticket)
        "status": event.get("status", "SCHEDULED"),
        "cancel_reason": event.get("cancel_reason"),
    }


@routes.get("/api/events")
@answers(PublicEventList, paged=True)
async def list_events(request: web.Request) -> Paged[PublicEventList]:
    query = parse_query(request, EventsQuery)
    backends = request.app[backends_key]
    listed = await backends.events.events_page(query.page, query.per_page)
    events = listed.items
    counts: dict[str, dict[str, int]] = {}
    if events:
        counts = await backends.inventory.seat_counts([e["event_id"] for e in events])
    data = [public_event(e, counts.get(e["event_id"])) for e in events]
    page = listed.pagination
    return Paged(
        PublicEventList.model_validate(data),
        Pagination.model_validate(page) if page is not None else None,
    )


@routes.get("/api/events/{event_id}")
@answers(EventDetail)
async def get_event(request: web.Request) -> EventDetail:
    event_id = parse_uuid(request.match_info["event_id"], "event_id")
    backends = request.app[backends_key]
    event = await backends.events.event(event_id)
    seat_map = await backends.inventory.list_seats(event_id=event_id)
    pricing = event.get("pricing", {})
    seats = [
        {
            "seat_id": s.seat_id,
            "row": s.row,
            "number": s.number,
            "status": s.status,
            "category": s.category,
            "price": pricing.get(s.category),
        }
        for s in seat_map
    ]
    counts: dict[str, int] = {}
    for s in seat_map:
        counts[s.status] = counts.get(s.status, 0) + 1
    data = public_event(event, counts)
    data["venue"]["address"] = (event.get("venue") or {}).get("address")
    data["seats"] = seats
    return EventDetail.model_validate(data)
