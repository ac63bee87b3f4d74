"""Reads that join what several services own, for the list views: e-mails of users (users),
seats (inventory), events (the event cache) and gate names (events). Each fetches the distinct
ids of one page at once, in parallel; an id that no longer resolves is left out, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from central.errors import ApiError
from central.orchestrator.backends import Backends
from central.orchestrator.event_cache import EventCache
from proto import inventory_pb2 as pb

GONE = ("USER_NOT_FOUND", "EVENT_NOT_FOUND", "GATE_NOT_FOUND", "SEAT_NOT_FOUND")


async def _each(ids: Iterable[str], fetch: Any) -> dict[str, Any]:
    distinct = sorted({i for i in ids if i})

    async def one(item: str) -> Any:
        try:
            return await fetch(item)
        except ApiError as err:
            if err.code in GONE:
                return None
            raise

    found = await asyncio.gather(*(one(i) for i in distinct))
    return {i: f for i, f in zip(distinct, found, strict=True) if f is not None}


async def emails(backends: Backends, user_ids: Iterable[str]) -> dict[str, str]:
    async def fetch(user_id: str) -> str:
        user = await backends.users.user(user_id)
        return str(user["email"])

    return await _each(user_ids, fetch)


async def seats(backends: Backends, seat_ids: Iterable[str]) -> dict[str, pb.Seat]:
    return await _each(seat_ids, backends.inventory.seat)


async def events(cache: EventCache, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    return await _each(event_ids, cache.get)


async def gate_names(backends: Backends, gate_ids: Iterable[str]) -> dict[str, str]:
    async def fetch(gate_id: str) -> str:
        gate = await backends.events.gate(gate_id)
        return str(gate["name"])

    return await _each(gate_ids, fetch)


def event_summary(event: dict[str, Any] | None, event_id: str) -> dict[str, Any]:
    """The event as list views show it beside an order, a transfer or a ticket."""
    if event is None:  # the record outlived its event: still show what we know
        return {"event_id": event_id or None}
    venue = event.get("venue") or {}
    return {
        "event_id": event["event_id"],
        "name": event["name"],
        "hall_id": event["hall_id"],
        "event_date": event["event_date"],
        "venue": {"venue_id": venue.get("venue_id"), "name": venue.get("name")},
    }
