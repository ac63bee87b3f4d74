"""A cache whose answers are never older than `ttl` seconds, for the reads on every scan and
reserve (a gate's device token, an event) that change rarely but must not be served stale for
long: a revoked gate or a changed event is seen within `ttl` by every process, with no message
between them. Concurrent misses of one key share one read (no stampede when an entry expires
under load), and a read is only shared while it is itself fresh enough."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class FreshCache(Generic[V]):
    def __init__(
        self,
        ttl: float,
        *,
        max_items: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._clock = clock
        self._items: dict[Hashable, tuple[float, V]] = {}
        self._loading: dict[Hashable, tuple[float, asyncio.Future[V]]] = {}
        self._forgotten = 0  # bumped by forget(): a read begun before it is not kept
        self.loads = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        now = self._clock()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        loading = self._loading.get(key)
        if loading is None or loading[0] + self.ttl <= now:
            future = asyncio.ensure_future(self._load(key, load, now))
            # a read whose every waiter gave up (timeouts) must not log "never retrieved"
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            loading = (now, future)
            self._loading[key] = loading
        # shielded: one waiter's timeout does not cancel the read the others wait for
        return await asyncio.shield(loading[1])

    def peek(self, key: Hashable) -> V | None:
        """The value if it is fresh now, without reading it (None: not at hand)."""
        hit = self._items.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        return None

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]], began: float) -> V:
        forgotten = self._forgotten
        self.loads += 1
        try:
            value = await load()
        finally:
            current = self._loading.get(key)
            if current is not None and current[0] == began:
                del self._loading[key]
        if forgotten == self._forgotten:
            if len(self._items) >= self.max_items:
                self._items.clear()
            # fresh from when the read began, not when it answered
            self._items[key] = (began + self.ttl, value)
        return value

    def forget(self, key: Hashable) -> None:
        """This process just changed what `key` names: read it again on its next use."""
        self._items.pop(key, None)
        self._loading.pop(key, None)
        self._forgotten += 1

    def forget_where(self, stale: Callable[[V], bool]) -> None:
        for key, (_, value) in list(self._items.items()):
            if stale(value):
                del self._items[key]
        self._loading.clear()
        self._forgotten += 1
