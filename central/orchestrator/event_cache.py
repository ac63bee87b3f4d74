"""Event data changes rarely and is read on every reserve and every scan: a short-lived cache in
front of the events service keeps it off the hot path, and a change made anywhere is seen within
EVENT_CACHE_TTL by every orchestrator process (fresh_cache.py)."""

from __future__ import annotations

from typing import Any

from central.clients.events import EventsClient
from central.orchestrator.fresh_cache import FreshCache

# Seconds an event may be served from a cache: a cancellation waits this long after marking the
# event CANCELLING before its last sweep, so no replica can still start a sale from a stale copy.
EVENT_CACHE_TTL = 0.5


class EventCache:
    def __init__(
        self, events: EventsClient, ttl: float = EVENT_CACHE_TTL, max_items: int = 10_000
    ) -> None:
        self.events = events
        self.ttl = ttl
        self._cache: FreshCache[dict[str, Any]] = FreshCache(ttl, max_items=max_items)

    async def get(self, event_id: str) -> dict[str, Any]:
        return await self._cache.get(event_id, lambda: self._read(event_id))

    async def _read(self, event_id: str) -> dict[str, Any]:
        event = dict(await self.events.event(event_id))
        return event

    def forget(self, event_id: str) -> None:
        """Drop one event (its status just changed here)."""
        self._cache.forget(event_id)
