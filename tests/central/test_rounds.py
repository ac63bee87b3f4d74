"""Background loops stop between rounds: stop() lets the round in progress finish (a round
cancelled inside `engine.connect()` strands a pooled connection), ends a loop that is pausing at
once, and cancels only a round that overruns its grace period."""

from __future__ import annotations

import asyncio
import logging

import pytest

from central.rounds import Rounds


async def loop(
    rounds: Rounds,
    release: asyncio.Event,
    started: asyncio.Event,
    log: list[str],
    finished: asyncio.Event | None = None,
) -> None:
    while not rounds.stopping:
        started.set()
        log.append("round started")
        await release.wait()  # the round's own work, e.g. a database call
        log.append("round finished")
        if finished is not None:
            finished.set()
        if not await rounds.pause(3600):
            return


async def test_stop_lets_the_round_in_progress_finish() -> None:
    rounds, release, started = Rounds("test"), asyncio.Event(), asyncio.Event()
    log: list[str] = []
    task = asyncio.create_task(loop(rounds, release, started, log))
    await started.wait()
    stopping = asyncio.create_task(rounds.stop(task, grace=30))
    await asyncio.sleep(0)
    assert not stopping.done()  # it waits for the round
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert log == ["round started", "round finished"]
    assert task.done() and not task.cancelled()


async def test_stop_ends_a_pausing_loop_at_once() -> None:
    rounds, release, started = Rounds("test"), asyncio.Event(), asyncio.Event()
    log: list[str] = []
    finished = asyncio.Event()
    release.set()
    task = asyncio.create_task(loop(rounds, release, started, log, finished))
    await asyncio.wait_for(finished.wait(), 5)
    # the loop now pauses for an hour; stop() must not wait for that
    await asyncio.wait_for(rounds.stop(task, grace=30), 5)
    assert task.done() and not task.cancelled()
    assert not await rounds.pause(3600)  # stopped: no further round


async def test_pause_answers_true_when_woken() -> None:
    rounds, wake = Rounds("test"), asyncio.Event()
    pausing = asyncio.create_task(rounds.pause(3600, wake))
    await asyncio.sleep(0)
    wake.set()
    assert await asyncio.wait_for(pausing, 5) is True


async def test_a_round_past_its_grace_is_cancelled_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds, release, started = Rounds("stuck loop"), asyncio.Event(), asyncio.Event()
    log: list[str] = []
    task = asyncio.create_task(loop(rounds, release, started, log))
    await started.wait()
    with caplog.at_level(logging.WARNING, logger="central.rounds"):
        await asyncio.wait_for(rounds.stop(task, grace=0.05), 5)  # release is never set
    assert task.cancelled()
    assert log == ["round started"]
    assert "stuck loop: a round ran past 0.05 s at shutdown; cancelled" in caplog.text


async def test_a_loop_that_had_died_is_reported_at_stop(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("the loop's own bug")

    rounds = Rounds("broken loop")
    task = asyncio.create_task(broken())
    await asyncio.wait({task})
    with caplog.at_level(logging.ERROR, logger="central.rounds"):
        await asyncio.wait_for(rounds.stop(task, grace=30), 5)
    assert "broken loop: the loop had failed" in caplog.text
    assert "the loop's own bug" in caplog.text
