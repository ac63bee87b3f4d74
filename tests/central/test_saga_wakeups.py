"""A request waiting for another request's saga or Idempotency-Key is woken by notification: two
"processes" (separate engines, separate listeners) on the real PostgreSQL, the fallback poll set to
a minute, and the waiter back well inside that once the other side lets go. In one process (SQLite)
the asyncio event does the same."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import make_engine, migrate
from central.orchestrator.idempotency import IdempotencyStore
from central.saga import SagaContext, SagaDefinition, SagaRunner, Step
from central.saga.schema import STEP_LOG_STEPS, STEPS
from central.saga.wakeups import Wakeups

SLOW_FALLBACK = 60.0  # a waiter that only polled would sit here a minute
WOKEN_WITHIN = 10.0  # generous for a loaded machine, far below the fallback


class Process:
    """What one orchestrator process has: its own engine, listener and runner."""

    def __init__(self, engine: AsyncEngine, gate: asyncio.Event) -> None:
        self.engine = engine
        self.wakeups = Wakeups(fallback_poll=SLOW_FALLBACK)
        self.in_step = asyncio.Event()

        async def slow(ctx: SagaContext) -> Any:
            self.in_step.set()
            await gate.wait()
            return {"done": True}

        self.runner = SagaRunner(
            engine, [SagaDefinition("slow", {"only": [Step("slow", slow)]})], wakeups=self.wakeups
        )
        self.keys = IdempotencyStore(engine, wakeups=self.wakeups)


async def asleep(process: Process) -> None:
    """Until a waiter of this process is asleep on its wakeup event (bounded)."""
    deadline = time.monotonic() + WOKEN_WITHIN
    while process.wakeups.sleeping == 0:
        assert time.monotonic() < deadline, "the waiter never went to sleep"
        await asyncio.sleep(0.01)


@pytest.fixture
async def two_processes(db_url: str) -> AsyncIterator[tuple[Process, Process, asyncio.Event]]:
    gate = asyncio.Event()
    engines = [await make_engine(db_url) for _ in range(2)]
    await migrate(engines[0], [*STEPS, *STEP_LOG_STEPS])
    processes = [Process(e, gate) for e in engines]
    try:
        for p in processes:
            await p.wakeups.listen(p.engine)
        yield processes[0], processes[1], gate
    finally:
        for p in processes:
            await p.wakeups.close()
            await p.engine.dispose()


async def test_a_waiter_is_woken_when_the_saga_is_let_go(
    two_processes: tuple[Process, Process, asyncio.Event], db_url: str
) -> None:
    driver, waiter, gate = two_processes
    if db_url.startswith("postgresql"):
        assert waiter.wakeups.listening.is_set()
    else:
        waiter = driver  # SQLite: one process, the asyncio event wakes the waiter
    drive = asyncio.create_task(driver.runner.start("slow", {}, saga_id="s1"))
    await driver.in_step.wait()
    record = await waiter.runner.get("s1")
    assert record is not None and record.status == "RUNNING"
    waiting = asyncio.create_task(waiter.runner.wait_settled("s1", timeout=2 * SLOW_FALLBACK))
    await asleep(waiter)  # it has read RUNNING and waits for a wakeup
    started = time.monotonic()
    gate.set()
    settled = await asyncio.wait_for(waiting, WOKEN_WITHIN)
    assert settled.status == "COMPLETED" and settled.result == {"done": True}
    assert time.monotonic() - started < WOKEN_WITHIN
    await drive


async def test_a_repeat_request_is_woken_by_the_first_answer(
    two_processes: tuple[Process, Process, asyncio.Event], db_url: str
) -> None:
    first, repeat, gate = two_processes
    if not db_url.startswith("postgresql"):
        repeat = first

    entered = asyncio.Event()

    async def handler() -> tuple[int, dict[str, Any]]:
        entered.set()
        await gate.wait()
        return 200, {"answer": 42}

    async def never() -> tuple[int, dict[str, Any]]:
        raise AssertionError("the repeat must not run the handler")

    running = asyncio.create_task(first.keys.run("scope", "k1", "digest", handler))
    await entered.wait()  # the first request holds the key
    waiting = asyncio.create_task(repeat.keys.run("scope", "k1", "digest", never))
    await asleep(repeat)
    gate.set()
    assert await asyncio.wait_for(waiting, WOKEN_WITHIN) == (200, {"answer": 42})
    assert await running == (200, {"answer": 42})
