"""Event data changes rarely and is read on every reserve and every scan: a short-lived cache in
front of the events service keeps it off the hot path."""

from __future__ import annotations

import time
from typing import Any

from central.clients.events import EventsClient

# Seconds an event may be served from a cache: a cancellation waits this long after marking the
# event CANCELLING before its last sweep, so no replica can still start a sale from a stale copy.
EVENT_CACHE_TTL = 5.0


class EventCache:
    def __init__(
        self, events: EventsClient, ttl: float = EVENT_CACHE_TTL, max_items: int = 10_000
    ) -> None:
        self.events = events
        self.ttl = ttl
        self.max_items = max_items
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, event_id: str) -> dict[str, Any]:
        now = time.monotonic()
        hit = self._items.get(event_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        event = dict(await self.events.event(event_id))
        if len(self._items) >= self.max_items:
            self._items.clear()
        self._items[event_id] = (now + self.ttl, event)
        return event

    def forget(self, event_id: str) -> None:
        """Drop one event (its status just changed here)."""
        self._items.pop(event_id, None)
