"""The backstop for hold expiry: releases seats whose hold outlived `held_until` (and, without a
broker, the only mechanism), then tells an optional callback which holds it ended."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from central.inventory.store import InventoryStore
from central.logs import correlation_id, new_correlation_id
from central.rounds import Rounds

log = logging.getLogger(__name__)

Released = list[tuple[str, str]]  # (seat_id, hold_id)
ReleasedCallback = Callable[[Released], Awaitable[None]]


class HoldSweeper:
    def __init__(
        self,
        store: InventoryStore,
        interval: float,
        on_released: Callable[[], ReleasedCallback | None],
        batch: int = 500,
    ):
        self.store = store
        self.interval = interval
        # A getter, so a callback installed after start (the orchestrator's) is used from then on.
        self._callback = on_released
        self.batch = batch

    async def sweep_once(self) -> Released:
        token = correlation_id.set(f"sweep-{new_correlation_id()[:12]}")
        released: Released = []
        try:
            while True:
                batch = await self.store.release_expired(limit=self.batch)
                for seat_id, hold_id in batch:
                    log.info("hold %s on seat %s expired: seat released", hold_id, seat_id)
                released.extend(batch)
                callback = self._callback()
                if batch and callback is not None:
                    try:
                        await callback(batch)
                    except Exception:  # the seats are free either way; the caller must cope
                        log.exception("on_released callback failed for %d holds", len(batch))
                if len(batch) < self.batch:
                    return released
        finally:
            correlation_id.reset(token)

    async def run(self, rounds: Rounds) -> None:
        """Sweep every `interval` until `rounds` is stopped (between sweeps)."""
        while not rounds.stopping:
            try:
                await self.sweep_once()
            except Exception:  # a database hiccup must not end the sweeping
                log.exception("hold sweep failed")
            if not await rounds.pause(self.interval):
                return
