"""Waking a request that waits for another request's work (a saga someone else drives, the first
answer to an Idempotency-Key) instead of polling the database every few milliseconds.

In one process an asyncio.Event per waiter is set by whoever finishes the work. Across processes
PostgreSQL tells every listener: migration 105's triggers NOTIFY on the channel when a saga stops
being driven or a key gets its answer, and each process LISTENs on one dedicated connection.
Waiters still re-read at a slow fallback interval, so a lost notification (the listening
connection dropped, SQLite shared by two processes) costs time, never correctness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from central.saga.schema import WAKEUP_CHANNEL

log = logging.getLogger(__name__)

FALLBACK_POLL = 1.0  # seconds between re-reads when no notification comes
_KEEPALIVE = 30.0  # seconds between checks that the listening connection still answers
_RECONNECT = 1.0


def saga_topic(saga_id: str) -> str:
    return f"saga:{saga_id}"


def idempotency_topic(scope: str, key: str) -> str:
    # The triggers build the same string: 'idem:' || scope || chr(10) || key
    return f"idem:{scope}\n{key}"


class Wakeups:
    def __init__(self, *, fallback_poll: float = FALLBACK_POLL) -> None:
        self.fallback_poll = fallback_poll
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while the PostgreSQL listener is connected
        self.sleeping = 0  # waiters asleep on their event now (tests wait for this)

    @contextlib.contextmanager
    def watch(self, topic: str) -> Iterator[asyncio.Event]:
        """An event set whenever `topic` is notified. Clear it, read the state, then wait:
        a notification between the read and the wait is not lost."""
        event = asyncio.Event()
        self._waiters.setdefault(topic, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(topic)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[topic]

    async def wait(self, event: asyncio.Event, timeout: float | None = None) -> bool:
        """Wait for `event` at most the fallback interval (or `timeout` if sooner); True when
        notified. Clears it for the next round."""
        limit = self.fallback_poll if timeout is None else min(timeout, self.fallback_poll)
        self.sleeping += 1
        try:
            await asyncio.wait_for(event.wait(), max(limit, 0.0))
        except TimeoutError:
            return False
        finally:
            self.sleeping -= 1
        event.clear()
        return True

    def notify(self, topic: str) -> None:
        for event in self._waiters.get(topic, ()):
            event.set()

    def _notify_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    # ----- across processes -----
    async def listen(self, engine: AsyncEngine, *, ready_within: float = 5.0) -> None:
        """On PostgreSQL, LISTEN on a dedicated connection from now on (reconnecting when it
        drops); waits up to `ready_within` for the first LISTEN. A no-op on SQLite."""
        if engine.dialect.name != "postgresql" or self._task is not None:
            return
        self._task = asyncio.create_task(self._listen_forever(engine))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), ready_within)

    async def _listen_forever(self, engine: AsyncEngine) -> None:
        while True:
            try:
                await self._listen_once(engine)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("saga wakeups: listening connection lost (%s); reconnecting", exc)
            self.listening.clear()
            await asyncio.sleep(_RECONNECT)

    async def _listen_once(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection  # the asyncpg connection itself
            lost = asyncio.Event()
            driver.add_termination_listener(lambda _conn: lost.set())
            await driver.add_listener(WAKEUP_CHANNEL, self._on_notification)
            try:
                self.listening.set()
                # Whatever finished while nobody listened: every waiter re-reads now.
                self._notify_all()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), _KEEPALIVE)
                    if not lost.is_set():
                        await driver.execute("SELECT 1")  # a dead link shows up here
            finally:
                self.listening.clear()
                if not driver.is_closed():
                    with contextlib.suppress(Exception):
                        await driver.remove_listener(WAKEUP_CHANNEL, self._on_notification)

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notify(payload)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
