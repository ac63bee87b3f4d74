"""The saga runner on a fake clock, on SQLite and the real PostgreSQL: a step's output is recorded
once (one row per step, the input never rewritten) and replayed after a crash; two runners
competing for one lease — exactly one proceeds and the loser cannot record a step; a slow phase
renews its lease; a refused step is not undone; migration 105 carries a running saga's old log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import make_engine, migrate
from central.errors import ApiError
from central.saga import (
    Pause,
    Refused,
    SagaBusy,
    SagaContext,
    SagaDefinition,
    SagaRecord,
    SagaRunner,
    Step,
)
from central.saga import statements as hot
from central.saga.schema import STEP_LOG_STEPS, STEPS, saga_steps, sagas

LEASE = 10.0


class FakeClock:
    """Unix seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Crash(BaseException):
    """The process dying mid-step: nothing of the runner's error handling runs."""


class Hold:
    """Holds one call of a step until the test releases it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


class Effects:
    """What the steps did to the world; the test can hold calls of "charge" one by one."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.crash_at: str | None = None
        self.holds: list[Hold] = []
        self.held_step = "charge"

    def hold(self, step: str = "charge") -> Hold:
        held = Hold()
        self.held_step = step
        self.holds.append(held)
        return held

    async def act(self, name: str, ctx: SagaContext) -> Any:
        at = len(self.calls)  # which call this is: tells two runners' outputs apart
        self.calls.append(name)
        if name == self.held_step and self.holds:
            held = self.holds.pop(0)
            held.entered.set()
            await held.release.wait()
        if self.crash_at == name:
            raise Crash()
        return {"step": name, "at": at, "input": ctx.data["x"]}


def definition(effects: Effects, *, clock: FakeClock | None = None) -> SagaDefinition:
    def step(name: str, undo: bool = True) -> Step:
        async def action(ctx: SagaContext) -> Any:
            if clock is not None:
                clock.advance(LEASE * 0.6)  # a slow step: more than half a lease each
            return await effects.act(name, ctx)

        async def compensate(ctx: SagaContext) -> None:
            effects.calls.append(f"undo {name}")

        return Step(name, action, compensate if undo else None)

    async def answer(ctx: SagaContext) -> Any:
        return {"charged_at": ctx.results["charge"]["at"], "x": ctx.data["x"]}

    return SagaDefinition(
        kind="test",
        phases={
            "first": [step("reserve")],
            "second": [step("charge"), step("ship"), Step("answer", answer, durable=False)],
        },
        forward_phases=frozenset({"second"}),
    )


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await make_engine(db_url)
    await migrate(engine, [*STEPS, *STEP_LOG_STEPS])
    try:
        yield engine
    finally:
        await engine.dispose()


async def rows(engine: AsyncEngine, saga_id: str) -> dict[str, tuple[str, Any]]:
    async with engine.connect() as conn:
        found = (
            await conn.execute(sa.select(saga_steps).where(saga_steps.c.saga_id == saga_id))
        ).all()
    return {r.step: (r.status, json.loads(r.output) if r.output else None) for r in found}


async def stored_input(engine: AsyncEngine, saga_id: str) -> Any:
    async with engine.connect() as conn:
        return json.loads(
            await conn.scalar(sa.select(sagas.c.data).where(sagas.c.saga_id == saga_id)) or "null"
        )


async def test_outputs_are_recorded_once_and_replayed_after_a_crash(engine: AsyncEngine) -> None:
    clock, effects = FakeClock(), Effects()
    first = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    record = await first.start("test", {"x": 7})
    assert record.status == "WAITING"
    effects.crash_at = "ship"
    with pytest.raises(Crash):
        await first.run_phase(record.saga_id, "second")
    assert effects.calls == ["reserve", "charge", "ship"]
    assert set(await rows(engine, record.saga_id)) == {"reserve", "charge"}

    # Another runner cannot take the saga while the dead one's lease still holds ...
    effects.crash_at = None
    second = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    assert await second.recover_once() == 0
    # ... and once it lapsed, replays: charge's recorded output is used, not run again.
    clock.advance(LEASE + 1)
    assert await second.recover_once() == 1
    assert effects.calls == ["reserve", "charge", "ship", "ship"]
    done = await second.get(record.saga_id)
    assert done is not None and done.status == "COMPLETED"
    assert done.result == {"charged_at": 1, "x": 7}
    assert await rows(engine, record.saga_id) == {
        "reserve": ("DONE", {"step": "reserve", "at": 0, "input": 7}),
        "charge": ("DONE", {"step": "charge", "at": 1, "input": 7}),
        "ship": ("DONE", {"step": "ship", "at": 3, "input": 7}),
    }
    assert await stored_input(engine, record.saga_id) == {"x": 7}


async def test_the_input_is_read_only_to_steps(engine: AsyncEngine) -> None:
    async def scribble(ctx: SagaContext) -> Any:
        ctx.data["note"] = 1  # type: ignore[index]
        return None

    runner = SagaRunner(
        engine, [SagaDefinition("scribble", {"only": [Step("scribble", scribble)]})]
    )
    with pytest.raises(ApiError) as failed:
        await runner.start("scribble", {"x": 1})
    assert failed.value.code == "INTERNAL_ERROR"  # the step failed: the input cannot change


async def test_two_runners_racing_for_one_lease_one_proceeds(engine: AsyncEngine) -> None:
    clock, effects = FakeClock(), Effects()
    a = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    b = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    saga_id = (await a.start("test", {"x": 1})).saga_id
    held = effects.hold()

    async def drive(runner: SagaRunner) -> str:
        try:
            await runner.run_phase(saga_id, "second")
        except SagaBusy:
            return "busy"
        return "ran"

    racers = [asyncio.create_task(drive(r)) for r in (a, b)]
    await held.entered.wait()  # the winner is inside its first step
    held.release.set()
    assert sorted(await asyncio.gather(*racers)) == ["busy", "ran"]
    assert effects.calls.count("charge") == 1


async def test_a_runner_whose_lease_lapsed_cannot_record(engine: AsyncEngine) -> None:
    clock, effects = FakeClock(), Effects()
    a = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    saga_id = (await a.start("test", {"x": 1})).saga_id
    held = effects.hold()
    slow = asyncio.create_task(a.run_phase(saga_id, "second"))
    await held.entered.wait()
    clock.advance(LEASE + 1)  # nobody took the saga over, but the lease is no longer a's
    held.release.set()
    with pytest.raises(SagaBusy):
        await slow
    assert set(await rows(engine, saga_id)) == {"reserve"}


async def test_a_runner_whose_lease_lapsed_cannot_end_the_phase(engine: AsyncEngine) -> None:
    """The phase's last effect ("ship"): on PostgreSQL recorded by the statement that ends the
    phase, which must refuse as a whole."""
    clock, effects = FakeClock(), Effects()
    a = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    saga_id = (await a.start("test", {"x": 1})).saga_id
    held = effects.hold("ship")
    slow = asyncio.create_task(a.run_phase(saga_id, "second"))
    await held.entered.wait()
    clock.advance(LEASE + 1)
    held.release.set()
    with pytest.raises(SagaBusy):
        await slow
    assert set(await rows(engine, saga_id)) == {"reserve", "charge"}
    record = await a.get(saga_id)
    assert record is not None and record.status == "RUNNING"


async def test_a_runner_that_lost_its_lease_cannot_record(engine: AsyncEngine) -> None:
    clock, effects = FakeClock(), Effects()
    a = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    b = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    saga_id = (await a.start("test", {"x": 1})).saga_id
    held_a, held_b = effects.hold(), effects.hold()
    slow = asyncio.create_task(a.run_phase(saga_id, "second"))
    await held_a.entered.wait()  # a is inside "charge", holding the lease

    clock.advance(LEASE + 1)  # a's lease lapses; b takes the saga over ...
    recovery = asyncio.create_task(b.recover_once())
    await held_b.entered.wait()  # ... and is inside its own "charge", not yet recorded
    held_a.release.set()
    with pytest.raises(SagaBusy):
        await slow  # a's charge returns first, but its record is refused
    held_b.release.set()
    assert await recovery == 1
    recorded = await rows(engine, saga_id)
    assert recorded["charge"] == ("DONE", {"step": "charge", "at": 2, "input": 1})  # b's call
    assert effects.calls.count("ship") == 1
    done = await b.get(saga_id)
    assert done is not None and done.status == "COMPLETED"


async def test_a_slow_phase_renews_its_lease(engine: AsyncEngine) -> None:
    clock, effects = FakeClock(), Effects()
    runner = SagaRunner(
        engine, [definition(effects, clock=clock)], lease_seconds=LEASE, clock=clock
    )
    # Each step takes 0.6 of a lease: without renewal the second one's record would be refused.
    done = await runner.start("test", {"x": 3})
    done = await runner.run_phase(done.saga_id, "second")
    assert done.status == "COMPLETED" and done.result == {"charged_at": 1, "x": 3}


async def test_a_refused_step_is_not_undone_and_a_pause_keeps_steps(engine: AsyncEngine) -> None:
    calls: list[str] = []

    async def hold(ctx: SagaContext) -> Any:
        calls.append("hold")
        return {"held": True}

    async def move(ctx: SagaContext) -> Any:
        calls.append("move")
        if ctx.data["refuse"]:
            raise Refused(ApiError("SEAT_UNAVAILABLE", "moved on"))
        raise Pause(ApiError("OTP_REQUIRED", "later"))

    async def undo(name: str, ctx: SagaContext) -> None:
        calls.append(f"undo {name}")

    saga = SagaDefinition(
        "refusing",
        {
            "only": [
                Step("hold", hold, lambda ctx: undo("hold", ctx)),
                Step("move", move, lambda ctx: undo("move", ctx)),
            ]
        },
    )
    runner = SagaRunner(engine, [saga], clock=FakeClock())
    with pytest.raises(ApiError) as refused:
        await runner.start("refusing", {"refuse": True})
    assert refused.value.code == "SEAT_UNAVAILABLE"
    assert calls == ["hold", "move", "undo hold"]  # move said it did nothing: no undo

    calls.clear()
    with pytest.raises(ApiError) as paused:
        await runner.start("refusing", {"refuse": False}, saga_id="p")
    assert paused.value.code == "OTP_REQUIRED" and calls == ["hold", "move"]
    record = await runner.get("p")
    assert record is not None and record.status == "WAITING"
    assert set(await rows(engine, "p")) == {"hold"}


class StatementLog:
    """Every statement the runner sends on its driver pool, by the statement's first words."""

    def __init__(self, runner: SagaRunner) -> None:
        self.sent: list[str] = []
        direct = runner._direct
        for name in ("fetch", "execute"):
            sends = getattr(direct, name)

            async def logged(hot: Any, params: Any, _sends: Any = sends) -> Any:
                self.sent.append(" ".join(str(hot.statement).split()[:3]))
                return await _sends(hot, params)

            setattr(direct, name, logged)


def note_statements_before_charge(runner: SagaRunner, effects: Effects) -> list[list[str]]:
    """The statements the runner sent before the "charge" step ran (filled when it runs)."""
    log = StatementLog(runner)
    before_first_step: list[list[str]] = []
    act = effects.act

    async def act_and_note(name: str, ctx: SagaContext) -> Any:
        if name == "charge":
            before_first_step.append(list(log.sent))
        return await act(name, ctx)

    effects.act = act_and_note  # type: ignore[method-assign]
    return before_first_step


# Taking a WAITING saga with its recorded steps: one statement on PostgreSQL, two on SQLite.
ONE_TAKE = {
    "postgres": [["WITH taken AS"]],
    "sqlite": [["UPDATE sagas SET", "SELECT saga_steps.saga_id, saga_steps.step,"]],
}


async def test_the_owner_resumes_a_waiting_saga_from_one_statement(
    engine: AsyncEngine, db_url: str
) -> None:
    clock, effects = FakeClock(), Effects()
    runner = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    started = await runner.start(
        "test", {"x": 4, "user_id": "u1"}, reference_id="order-1", deadline=clock() + 60
    )
    assert started.status == "WAITING"
    before_first_step = note_statements_before_charge(runner, effects)
    done = await runner.run_own_waiting_phase(
        "order-1", "test", "second", owner="u1", not_after=clock()
    )
    assert done is not None and done.status == "COMPLETED"
    assert done.result == {"charged_at": 1, "x": 4}
    # the first phase's output is replayed from the same read, not run again
    assert done.outputs["reserve"] == {"step": "reserve", "at": 0, "input": 4}
    assert effects.calls == ["reserve", "charge", "ship"]
    # find_by_reference + run_phase: three statements (read, lease, steps) before the first step
    if "postgres" in db_url:
        assert before_first_step == [["WITH taken AS"]]
    else:
        assert before_first_step == [
            ["UPDATE sagas SET", "SELECT saga_steps.saga_id, saga_steps.step,"]
        ]


async def test_run_phase_takes_a_waiting_saga_with_its_steps_in_one_statement(
    engine: AsyncEngine, db_url: str
) -> None:
    clock, effects = FakeClock(), Effects()
    runner = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    saga_id = (await runner.start("test", {"x": 8})).saga_id
    before_first_step = note_statements_before_charge(runner, effects)
    done = await runner.run_phase(saga_id, "second")
    assert done.status == "COMPLETED" and done.result == {"charged_at": 1, "x": 8}
    assert done.outputs["reserve"] == {"step": "reserve", "at": 0, "input": 8}
    assert before_first_step == ONE_TAKE["postgres" if "postgres" in db_url else "sqlite"]


def test_a_lapsed_lease_is_never_taken_with_its_steps_in_one_statement() -> None:
    # its old holder may commit a step the statement's snapshot would not see
    with pytest.raises(ValueError):
        hot.take_lease(("RUNNING",), False, True)


async def test_the_owners_fast_path_takes_no_saga_it_should_not(engine: AsyncEngine) -> None:
    clock, effects = FakeClock(), Effects()
    runner = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    data = {"x": 5, "user_id": "u1"}
    await runner.start("test", data, saga_id="s1", reference_id="order-1", deadline=clock() + 60)

    async def resume(**overrides: Any) -> SagaRecord | None:
        args: dict[str, Any] = {"reference_id": "order-1", "kind": "test", "phase": "second"}
        args |= {"owner": "u1", "not_after": clock()} | overrides
        return await runner.run_own_waiting_phase(**args)

    assert await resume(owner="u2") is None  # someone else's order
    assert await resume(reference_id="order-2") is None  # no such order
    assert await resume(kind="other") is None
    assert await resume(not_after=clock() + 61) is None  # past its deadline
    waiting = await runner.get("s1")
    assert waiting is not None and waiting.status == "WAITING" and waiting.phase == "first"
    assert effects.calls == ["reserve"]  # none of those ran a step or kept a lease
    assert await runner.run_phase("s1", "second") is not None  # so the saga is still free

    assert await resume() is None  # COMPLETED now: not WAITING
    assert effects.calls == ["reserve", "charge", "ship"]


async def test_a_racing_owner_finds_the_saga_taken(engine: AsyncEngine) -> None:
    clock, effects = FakeClock(), Effects()
    runner = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=clock)
    await runner.start("test", {"x": 6, "user_id": "u1"}, reference_id="o", deadline=clock() + 60)
    held = effects.hold()
    first = asyncio.create_task(
        runner.run_own_waiting_phase("o", "test", "second", owner="u1", not_after=clock())
    )
    await held.entered.wait()  # the first is inside its first step, holding the lease
    second = await runner.run_own_waiting_phase(
        "o", "test", "second", owner="u1", not_after=clock()
    )
    held.release.set()
    assert second is None
    finished = await first
    assert finished is not None and finished.status == "COMPLETED"
    assert effects.calls.count("charge") == 1


def test_a_non_durable_step_has_nothing_to_compensate() -> None:
    async def noop(ctx: SagaContext) -> None:
        return None

    with pytest.raises(ValueError):
        Step("check", noop, noop, durable=False)


def test_a_step_not_for_this_input_is_skipped() -> None:
    async def noop(ctx: SagaContext) -> None:
        return None

    def flagged(data: Mapping[str, Any]) -> bool:
        return bool(data.get("flagged"))

    step = Step("send_otp", noop, when=flagged)
    assert step.applies({"flagged": True}) and not step.applies({"flagged": False})


async def test_migration_105_moves_a_running_sagas_log(db_url: str) -> None:
    engine = await make_engine(db_url)
    try:
        await migrate(engine, STEPS)  # the schema before 105
        # Interrupted while compensating: ship undone, charge and reserve not yet.
        old_log = {
            "reserve": {"status": "DONE", "result": {"n": 1}},
            "charge": {"status": "DONE", "result": {"n": 1}},
            "ship": {"status": "COMPENSATED", "result": None},
        }
        base = {"kind": "test", "phase": "second", "lease_until": 0, "created_at": 1.0}
        async with engine.begin() as conn:
            await conn.execute(
                sagas.insert(),
                [
                    {
                        **base,
                        "saga_id": "running",
                        "status": "COMPENSATING",
                        "data": json.dumps({"x": 1}),
                        "steps": json.dumps(old_log),
                        "updated_at": 2.0,
                    },
                    {
                        **base,
                        "saga_id": "refund",
                        "kind": "order_refund",
                        "phase": "refund",
                        "status": "RUNNING",
                        "data": json.dumps({"order_id": "o", "order": {"seat_id": "s"}}),
                        "steps": json.dumps({"check_order": {"status": "DONE", "result": {}}}),
                        "updated_at": 2.0,
                    },
                ],
            )
        await migrate(engine, [*STEPS, *STEP_LOG_STEPS])
        assert await rows(engine, "running") == {
            "reserve": ("DONE", {"n": 1}),
            "charge": ("DONE", {"n": 1}),
            "ship": ("DONE", None),
            "undo:ship": ("COMPENSATED", None),
        }
        # A value the old step kept in the saga's data is now its step's output.
        assert (await rows(engine, "refund"))["check_order"][1] == {"order": {"seat_id": "s"}}

        # Recovery finishes the compensation from the moved log: ship is not undone twice.
        effects = Effects()
        runner = SagaRunner(engine, [definition(effects)], lease_seconds=LEASE, clock=FakeClock())
        assert await runner._recover("running", "COMPENSATING") == 1
        assert effects.calls == ["undo charge", "undo reserve"]
        record = await runner.get("running")
        assert record is not None and record.status == "FAILED"
    finally:
        await engine.dispose()


def test_no_saga_step_writes_its_input() -> None:
    """A step's output is what it returns: the input (`ctx.data`, `d = ctx.data`) is read-only at
    run time too, and this finds a write before a test has to run that step."""
    import re
    from pathlib import Path

    write = re.compile(
        r"\b(?:d|ctx\.data)\[[^\]]+\]\s*=(?!=)|\b(?:d|ctx\.data)\.(?:update|setdefault)\("
    )
    sagas_dir = Path(__file__).resolve().parents[2] / "central" / "orchestrator" / "sagas"
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(sagas_dir.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if write.search(line)
    ]
    assert found == []
