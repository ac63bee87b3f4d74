"""Background loops that stop between rounds, never in the middle of one.

Why not `task.cancel()`: a cancellation that lands while a round is inside `engine.connect()`
strands the pooled connection. The pool has handed it out, but the `async with` never got it, so
nothing returns it, and the garbage collector later finds it ("SAWarning: The garbage collector
is trying to clean up non-checked-in connection"). On SQLite it is an aiosqlite thread left
open; on PostgreSQL a server connection dropped uncleanly. A round also ends in a known state
(the entry log's outbox rows written and deleted, or neither). So `stop()` asks the loop to
finish the round in progress and waits for it. It cancels only a round that overruns its grace
period (a database that hangs), and then says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

log = logging.getLogger(__name__)


class Rounds:
    """The stop signal of one background loop. The loop waits between rounds with `pause`, and
    runs another round while `pause` answers True."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = asyncio.Event()
        self._wakes: set[asyncio.Event] = set()  # the events pauses wait on, set by stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def pause(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        """Wait up to `seconds`, or until `wake` is set. False at once when stop() was called:
        the loop then returns instead of starting another round."""
        if wake is None:
            wake = self._stop
        self._wakes.add(wake)  # stop() sets it: one event to wait on, as cheap as a timeout
        if not self._stop.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await wake.wait()
        return not self._stop.is_set()

    async def stop(self, task: asyncio.Task[None] | None, grace: float) -> None:
        """End the loop running in `task`: the round in progress finishes (up to `grace`
        seconds), then the loop returns at its next pause. A round past its grace is cancelled."""
        self._stop.set()
        for wake in self._wakes:
            wake.set()
        if task is None:
            return
        await asyncio.wait({task}, timeout=grace)
        if not task.done():
            log.warning("%s: a round ran past %g s at shutdown; cancelled", self.name, grace)
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled() and (failure := task.exception()) is not None:
            # the loop had died already (its rounds catch their own errors): shutdown goes on
            log.error("%s: the loop had failed", self.name, exc_info=failure)
