"""Event data changes rarely and is read on every reserve and every scan: a short-lived cache in
front of the events service keeps it off the hot path, and a change made anywhere is seen within
EVENT_CACHE_TTL by every orchestrator process (fresh_cache.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from central.clients.events import EventsClient
from central.orchestrator.fresh_cache import FreshCache

log = logging.getLogger(__name__)

# Seconds an event may be served from a cache: a cancellation waits this long after marking the
# event CANCELLING before its last sweep, so no replica can still start a sale from a stale copy.
EVENT_CACHE_TTL = 0.5
HALL_EVENTS_PAGE = 100
# a hall's list is read whole; past this many events it is cut (then a scan of a seat of an event
# not in it is judged the long way, never wrongly)
HALL_EVENTS_MAX = 1000


class EventCache:
    def __init__(
        self, events: EventsClient, ttl: float = EVENT_CACHE_TTL, max_items: int = 10_000
    ) -> None:
        self.events = events
        self.ttl = ttl
        self._cache: FreshCache[dict[str, Any]] = FreshCache(ttl, max_items=max_items)
        # every event of a hall, for the scan that is admitted in one call (verification.py)
        self._halls: FreshCache[list[dict[str, Any]]] = FreshCache(ttl, max_items=max_items)
        self._reading_halls: dict[str, asyncio.Future[Any]] = {}

    async def get(self, event_id: str) -> dict[str, Any]:
        return await self._cache.get(event_id, lambda: self._read(event_id))

    async def _read(self, event_id: str) -> dict[str, Any]:
        event = dict(await self.events.event(event_id))
        return event

    def hall_events(self, hall_id: str) -> list[dict[str, Any]] | None:
        """Every event of this hall as this cache holds it now, never older than the ttl, without
        waiting: None when the list is not at hand, and then it is read in the background for
        the scans that follow."""
        events = self._halls.peek(hall_id)
        if events is None and hall_id not in self._reading_halls:
            reading = asyncio.ensure_future(self.read_hall_events(hall_id))
            self._reading_halls[hall_id] = reading
            reading.add_done_callback(lambda f: self._read_done(hall_id, f))
        return events

    async def read_hall_events(self, hall_id: str) -> list[dict[str, Any]]:
        """Every event of this hall, from the cache or read now (hall_events reads ahead)."""
        return await self._halls.get(hall_id, lambda: self._read_hall(hall_id))

    def _read_done(self, hall_id: str, reading: asyncio.Future[Any]) -> None:
        self._reading_halls.pop(hall_id, None)
        if not reading.cancelled() and reading.exception() is not None:
            log.warning("events of hall %s not read: %s", hall_id, reading.exception())

    async def _read_hall(self, hall_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while len(found) < HALL_EVENTS_MAX:
            batch = await self.events.events_page(page, HALL_EVENTS_PAGE, hall_id=hall_id)
            found.extend(dict(e) for e in batch.items)
            if len(batch.items) < HALL_EVENTS_PAGE:
                break
            page += 1
        return found

    def forget(self, event_id: str) -> None:
        """Drop one event (its status just changed here), and every hall list that holds it."""
        self._cache.forget(event_id)
        self._halls.forget_where(lambda events: any(e["event_id"] == event_id for e in events))
