"""The saga runner.

A saga is a list of phases, each a list of steps with compensations. Its input (`data`) is fixed
when it starts and never written again; a step's return value is its only output, recorded in its
own `saga_steps` row before the next step starts (as DBOS records operation outputs). A phase runs
under a lease (owner token, expiry — taken by one conditional UPDATE), and a step's row is written
by one INSERT that also proves the lease is still ours: a runner that lost its lease records
nothing. Between phases the saga WAITS (the purchase waits for /api/pay); a waiting saga past its
deadline is compensated. Compensation runs every step of the phases begun so far, in reverse: each
compensation is safe when its step never took effect, so a step interrupted mid-flight (we cannot
know whether it took effect) is compensated too; a step that said for certain it took no effect
(`Refused`) is not. After a crash, recovery takes over sagas whose lease expired and replays the
recorded outputs: a phase marked `forward` is retried to completion (its steps are idempotent by
the key `saga id : step`), any other is compensated. The saga's answer is its last step's output.
On PostgreSQL a phase's last effect is recorded by the statement that ends the phase (one round
trip less per phase); a crash between the effect and that statement runs the step again, which is
why every step is idempotent by its key.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit, is_outage
from central.direct_sql import DirectPool, HotStatement
from central.errors import ApiError
from central.faults import fault_point
from central.rounds import Rounds
from central.saga import statements as hot
from central.saga.schema import saga_steps, sagas
from central.saga.wakeups import Wakeups, saga_topic

log = logging.getLogger(__name__)

ACTIVE = hot.ACTIVE
UNDO = "undo:"
# The input field that names whom a saga is for (run_own_waiting_phase checks it).
OWNER_KEY = "user_id"


class Pause(Exception):
    """Stop the phase without compensating; the saga WAITS again (e.g. 402, OTP required).
    Steps already done in this phase stay done."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class Abort(Exception):
    """Stop and compensate the whole saga, answering `error`."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class Refused(Exception):
    """The step says for certain that it took no effect (a definite refusal): the saga is rolled
    back answering `error`, and this step's own compensation does not run."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class SagaBusy(Exception):
    """Another runner holds this saga's lease."""


@dataclass
class SagaContext:
    saga_id: str
    kind: str
    # The input, read-only: a step's output is what it returns, never something it writes here.
    data: Mapping[str, Any]
    results: dict[str, Any] = field(default_factory=dict)  # outputs, recorded or not
    done: set[str] = field(default_factory=set)  # steps recorded DONE
    refused: set[str] = field(default_factory=set)
    compensated: set[str] = field(default_factory=set)
    lease: str = ""  # our lease token while we drive the saga
    lease_until: float = 0.0
    # A phase's last effect, recorded by the same statement that ends the phase (PostgreSQL).
    pending: tuple[str, Any] | None = None

    def key(self, step: str) -> str:
        """The idempotency key a step sends, so a retry repeats no effect."""
        return f"{self.saga_id}:{step}"


Action = Callable[[SagaContext], Awaitable[Any]]
Compensation = Callable[[SagaContext], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    name: str
    action: Action
    # The one compensation of the step's one effect (None: nothing to undo).
    compensate: Compensation | None = None
    # A non-durable step has no effect outside this process (a check, building the answer): it
    # is not worth a write, and after a crash it simply runs again.
    durable: bool = True
    # Whether the step applies to this saga, decided by the saga's fixed input alone (so a replay
    # decides the same): a step that does not apply is skipped without a record.
    when: Callable[[Mapping[str, Any]], bool] | None = None

    def __post_init__(self) -> None:
        if not self.durable and self.compensate is not None:
            raise ValueError(f"step {self.name}: a non-durable step has no effect to compensate")

    def applies(self, data: Mapping[str, Any]) -> bool:
        return self.when is None or self.when(data)


@dataclass(frozen=True)
class SagaDefinition:
    kind: str
    phases: dict[str, list[Step]]  # in order
    forward_phases: frozenset[str] = frozenset()  # recovered by retrying, not compensating
    deadline_error: ApiError | None = None  # why a WAITING saga past its deadline failed
    # The step of no return: once it took effect (or might have), the saga only goes forward.
    pivot: str | None = None
    # Called once a saga ends FAILED (after compensation), e.g. to record the outcome elsewhere.
    on_failed: Callable[[SagaContext, ApiError], Awaitable[None]] | None = None

    def phase_names(self) -> list[str]:
        return list(self.phases)

    def steps_through(self, phase: str) -> list[Step]:
        out: list[Step] = []
        for name, steps in self.phases.items():
            out.extend(steps)
            if name == phase:
                break
        return out

    @property
    def answer_step(self) -> str:
        """The step whose output is the saga's answer: its last."""
        return list(self.phases.values())[-1][-1].name


@dataclass
class SagaRecord:
    saga_id: str
    kind: str
    status: str
    phase: str
    data: Mapping[str, Any]
    result: Any
    error_code: str | None
    error_message: str | None
    deadline: float | None
    reference_id: str | None
    # Step outputs: filled when the record comes from driving the saga, empty from a plain read.
    outputs: dict[str, Any] = field(default_factory=dict)

    def error(self) -> ApiError | None:
        if self.error_code is None:
            return None
        return ApiError(self.error_code, self.error_message or "")


class SagaRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        definitions: list[SagaDefinition],
        *,
        lease_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        wakeups: Wakeups | None = None,
    ) -> None:
        self.engine = engine
        # Single statements need no BEGIN/COMMIT round trips (each one costs a syscall pair).
        self._db = autocommit(engine)
        # the statements a saga runs at every step, without SQLAlchemy's execution layer
        self._direct = DirectPool.of(engine)
        self.definitions = {d.kind: d for d in definitions}
        self.owner = f"runner-{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.wakeups = wakeups or Wakeups()
        # PostgreSQL can record a phase's last step and end the phase in one statement (a
        # data-modifying WITH); SQLite would need two either way.
        self._merge_phase_end = engine.dialect.name == "postgresql"
        # The lease token of each saga this process drives now (for heartbeat by saga id).
        self._leases: dict[str, SagaContext] = {}

    # ----- reads -----
    async def get(self, saga_id: str) -> SagaRecord | None:
        row = await self._direct.fetchrow(hot.GET, {"p_saga_id": saga_id})
        return self._as_record(row) if row is not None else None

    async def find_by_reference(self, reference_id: str) -> SagaRecord | None:
        row = await self._direct.fetchrow(hot.BY_REFERENCE, {"p_reference_id": reference_id})
        return self._as_record(row) if row is not None else None

    async def wait_settled(self, saga_id: str, timeout: float) -> SagaRecord:
        """The saga once no one drives it (or as it is after `timeout` seconds): woken by the
        runner that lets it go, in this process or (PostgreSQL) another; re-read at the slow
        fallback interval otherwise. KeyError if there is no such saga."""
        deadline = time.monotonic() + timeout
        with self.wakeups.watch(saga_topic(saga_id)) as woken:
            while True:
                woken.clear()
                record = await self.get(saga_id)
                if record is None:
                    raise KeyError(saga_id)
                left = deadline - time.monotonic()
                if record.status not in ACTIVE or left <= 0:
                    return record
                await self.wakeups.wait(woken, left)

    async def step_rows(self, saga_id: str) -> list[Any]:
        """The saga's recorded step outcomes, in the order they were recorded."""
        async with self._db.connect() as conn:
            return await self._step_rows(conn, saga_id)

    @staticmethod
    async def _step_rows(conn: AsyncConnection, saga_id: str) -> list[Any]:
        return list(
            (
                await conn.execute(
                    sa.select(saga_steps)
                    .where(saga_steps.c.saga_id == saga_id)
                    .order_by(saga_steps.c.recorded_at)
                )
            ).all()
        )

    @staticmethod
    def _as_record(row: Any) -> SagaRecord:
        return SagaRecord(
            saga_id=row["saga_id"],
            kind=row["kind"],
            status=row["status"],
            phase=row["phase"],
            data=MappingProxyType(json.loads(row["data"])),
            result=json.loads(row["result"]) if row["result"] else None,
            error_code=row["error_code"],
            error_message=row["error_message"],
            deadline=row["deadline"],
            reference_id=row["reference_id"],
        )

    # ----- lease -----
    def _new_token(self) -> str:
        # One token per drive, not per process: a request of this very process whose lease
        # lapsed cannot record over the one (recovery, another request) that took it over.
        return f"{self.owner}:{uuid.uuid4().hex[:8]}"

    async def _take_lease(
        self, saga_id: str, *, allowed: tuple[str, ...], status: str, phase: str | None
    ) -> tuple[SagaRecord, SagaContext] | None:
        """Take the saga (one conditional UPDATE) with its recorded steps; None if taken."""
        now = self.clock()
        token = self._new_token()
        params: dict[str, Any] = {
            "p_saga_id": saga_id,
            "p_now": now,
            "p_lease_owner": token,
            "p_lease_until": now + self.lease_seconds,
            "p_status": status,
            "p_updated_at": now,
        }
        if phase is not None:
            params["p_phase"] = phase
        # only a WAITING saga's steps may be read by the statement that takes it (statements.py)
        joined = self._merge_phase_end and not any(s in ACTIVE for s in allowed)
        return await self._take(hot.take_lease(allowed, phase is not None, joined), params, token)

    async def _take(
        self, statement: HotStatement, params: dict[str, Any], token: str
    ) -> tuple[SagaRecord, SagaContext] | None:
        """Run a lease-taking statement and replay the saga's recorded steps: those it answers
        itself (statements.with_recorded_steps), or else read by a second statement."""
        rows = await self._direct.fetch(statement, params)
        if not rows:
            return None
        row = rows[0]
        if "step_name" in row.keys():
            steps = [
                (r["step_name"], r["step_status"], r["step_output"])
                for r in rows
                if r["step_name"] is not None
            ]
        else:
            steps = await self._recorded_steps(row["saga_id"])
        return self._leased(row, steps, token)

    async def _recorded_steps(self, saga_id: str) -> list[tuple[str, str, str | None]]:
        """The saga's step outcomes (name, status, output) in the order they were recorded."""
        rows = await self._direct.fetch(hot.STEPS_OF, {"p_saga_id": saga_id})
        return [(r["step"], r["status"], r["output"]) for r in rows]

    def _leased(
        self, row: Any, steps: list[tuple[str, str, str | None]], token: str
    ) -> tuple[SagaRecord, SagaContext]:
        """The record and a driving context of a saga just leased with `token`, its recorded
        steps (name, status, output) replayed into the context."""
        record = self._as_record(row)
        ctx = SagaContext(record.saga_id, record.kind, record.data, lease=token)
        ctx.lease_until = float(row["lease_until"])
        for name, status, output in steps:
            if status == "COMPENSATED":
                ctx.compensated.add(name.removeprefix(UNDO))
            elif status == "REFUSED":
                ctx.refused.add(name)
            else:
                ctx.done.add(name)
                ctx.results[name] = json.loads(output) if output else None
        record.outputs = ctx.results
        return record, ctx

    def _step_params(self, ctx: SagaContext, step: str, status: str, output: Any) -> dict[str, Any]:
        """hot.RECORD's parameters: one step outcome, landing only while our lease holds."""
        return {
            "p_saga_id": ctx.saga_id,
            "p_lease": ctx.lease,
            "p_now": self.clock(),
            "p_step": step,
            "p_step_status": status,
            "p_output": json.dumps(output) if output is not None else None,
        }

    async def _record(self, ctx: SagaContext, step: str, status: str, output: Any) -> None:
        """Record one step outcome (one statement); SagaBusy when the lease is no longer ours."""
        try:
            inserted = await self._direct.execute(
                hot.RECORD, self._step_params(ctx, step, status, output)
            )
        except IntegrityError:
            # Already recorded by whoever drove the saga before us and lost the lease after:
            # we no longer know what is true, so stop (the current holder carries on).
            raise SagaBusy(ctx.saga_id) from None
        if inserted != 1:
            raise SagaBusy(ctx.saga_id)  # our lease lapsed (and maybe was taken): stop driving

    async def _flush(self, ctx: SagaContext) -> None:
        """Record the step held back for the phase's end, now (the phase ends another way)."""
        if ctx.pending is not None:
            step, output = ctx.pending
            ctx.pending = None
            await self._record(ctx, step, "DONE", output)

    async def _finish(self, ctx: SagaContext, status: str, **values: Any) -> None:
        """Set the saga's status and let go of the lease, only while it is still ours; with the
        step held back for it, recorded by the same statement (only if both land)."""
        params: dict[str, Any] = {
            "p_saga_id": ctx.saga_id,
            "p_lease": ctx.lease,
            "p_status": status,
            "p_updated_at": self.clock(),
            **{f"p_{name}": value for name, value in values.items()},
        }
        if ctx.pending is not None:
            step, output = ctx.pending
            params.update(self._step_params(ctx, step, "DONE", output))
        statement = hot.finish(tuple(sorted(values)), ctx.pending is not None)
        try:
            changed = await self._direct.execute(statement, params)
        except IntegrityError:
            raise SagaBusy(ctx.saga_id) from None
        ctx.pending = None
        if changed != 1:
            raise SagaBusy(ctx.saga_id)
        self._leases.pop(ctx.saga_id, None)
        if status not in ACTIVE:
            self.wakeups.notify(saga_topic(ctx.saga_id))

    async def _set_status(self, ctx: SagaContext, status: str, error: ApiError) -> None:
        """Mark the saga COMPENSATING (keeping the lease), only while it is ours."""
        async with self._db.connect() as conn:
            changed = await conn.execute(
                sagas.update()
                .where(sagas.c.saga_id == ctx.saga_id, sagas.c.lease_owner == ctx.lease)
                .values(
                    status=status,
                    error_code=error.code,
                    error_message=error.message,
                    updated_at=self.clock(),
                )
            )
        if changed.rowcount != 1:
            raise SagaBusy(ctx.saga_id)

    async def heartbeat(self, saga_id: str) -> None:
        """Extend our lease from inside a long step (a cancellation refunding thousands of
        orders), so recovery does not take the saga over while it is still being driven.
        SagaBusy when the lease is no longer ours."""
        ctx = self._leases.get(saga_id)
        if ctx is None:
            raise SagaBusy(saga_id)
        await self._extend(ctx)

    async def _extend(self, ctx: SagaContext) -> None:
        now = self.clock()
        changed = await self._direct.execute(
            hot.EXTEND,
            {
                "p_saga_id": ctx.saga_id,
                "p_lease": ctx.lease,
                "p_now": now,
                "p_now_set": now,
                "p_lease_until": now + self.lease_seconds,
            },
        )
        if changed != 1:
            raise SagaBusy(ctx.saga_id)
        ctx.lease_until = now + self.lease_seconds

    async def _keep_lease(self, ctx: SagaContext) -> None:
        """Before a step: renew the lease once half of it is used. A fast phase writes nothing
        for this; a slow one is not taken over while it is still making progress."""
        if self.clock() > ctx.lease_until - self.lease_seconds / 2:
            await self._extend(ctx)

    # ----- driving -----
    async def start(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        saga_id: str | None = None,
        deadline: float | None = None,
        reference_id: str | None = None,
    ) -> SagaRecord:
        """Create the saga (already leased by us, its input fixed) and run its first phase."""
        definition = self.definitions[kind]
        saga_id = saga_id or str(uuid.uuid4())
        first = definition.phase_names()[0]
        now = self.clock()
        token = self._new_token()
        encoded = json.dumps(data)
        await self._direct.execute(
            hot.START,
            {
                "p_saga_id": saga_id,
                "p_kind": kind,
                "p_status": "RUNNING",
                "p_phase": first,
                "p_data": encoded,
                "p_lease_owner": token,
                "p_lease_until": now + self.lease_seconds,
                "p_deadline": deadline,
                "p_reference_id": reference_id,
                "p_created_at": now,
                "p_updated_at": now,
            },
        )
        # Steps see the input as stored (a JSON round trip), so a replay sees exactly the same.
        ctx = SagaContext(saga_id, kind, MappingProxyType(json.loads(encoded)), lease=token)
        ctx.lease_until = now + self.lease_seconds
        return await self._run_phase(definition, ctx, first, deadline, reference_id)

    async def run_phase(self, saga_id: str, phase: str) -> SagaRecord:
        """Run `phase` of a WAITING saga. SagaBusy when another runner drives it now."""
        taken = await self._take_lease(saga_id, allowed=("WAITING",), status="RUNNING", phase=phase)
        if taken is None:
            if await self.get(saga_id) is None:
                raise KeyError(saga_id)
            raise SagaBusy(saga_id)
        record, ctx = taken
        definition = self.definitions[record.kind]
        return await self._run_phase(definition, ctx, phase, record.deadline, record.reference_id)

    async def run_own_waiting_phase(
        self, reference_id: str, kind: str, phase: str, *, owner: str, not_after: float
    ) -> SagaRecord | None:
        """Run `phase` of the reference's saga when it is WAITING, of `kind`, its input's
        "user_id" is `owner` and its deadline (if any) is not before `not_after` (wall seconds):
        a buyer resuming their own order. The lease and the recorded steps come in one statement
        on PostgreSQL (two on SQLite), where find_by_reference and then run_phase take two (three
        on SQLite). None when
        the saga is not taken that way (none, someone else's, not WAITING, past its deadline);
        the caller's own reads tell which. The phase's own errors and SagaBusy as run_phase's."""
        now = self.clock()
        token = self._new_token()
        dialect = self.engine.dialect.name
        params = {
            "p_reference_id": reference_id,
            "p_kind": kind,
            "p_owner": owner,
            "p_not_after": not_after,
            "p_lease_owner": token,
            "p_lease_until": now + self.lease_seconds,
            "p_status": "RUNNING",
            "p_phase": phase,
            "p_updated_at": now,
        }
        taken = await self._take(hot.lease_own_waiting(dialect, OWNER_KEY), params, token)
        if taken is None:
            return None
        record, ctx = taken
        definition = self.definitions[record.kind]
        return await self._run_phase(definition, ctx, phase, record.deadline, record.reference_id)

    async def request_phase(self, saga_id: str, phase: str) -> None:
        """Note that `phase` should run next; a caller about to run it says so first, and if it
        dies before it does, recovery runs the phase (once the note is a lease-length old)."""
        async with self._db.connect() as conn:
            await conn.execute(
                sagas.update()
                .where(sagas.c.saga_id == saga_id, sagas.c.status == "WAITING")
                .values(next_phase=phase, updated_at=self.clock())
            )

    async def _run_phase(
        self,
        definition: SagaDefinition,
        ctx: SagaContext,
        phase: str,
        deadline: float | None,
        reference_id: str | None,
    ) -> SagaRecord:
        self._leases[ctx.saga_id] = ctx
        current = ""
        try:
            for step in definition.phases[phase]:
                if step.name in ctx.done or not step.applies(ctx.data):
                    continue
                await self._keep_lease(ctx)
                fault_point(f"{definition.kind}.before_{step.name}")
                current = step.name  # from here the step may have taken effect
                try:
                    output = await step.action(ctx)
                except Refused as refused:
                    await self._record(ctx, step.name, "REFUSED", None)
                    ctx.refused.add(step.name)
                    raise Abort(refused.error) from None
                ctx.results[step.name] = output
                if step.durable:
                    if self._merge_phase_end and self._last_effect(definition, phase, step, ctx):
                        # Nothing after it but checks and the answer: recorded by the statement
                        # that ends the phase. A crash before that runs it again (idempotent).
                        ctx.pending = (step.name, output)
                    else:
                        await self._record(ctx, step.name, "DONE", output)
                    ctx.done.add(step.name)
                fault_point(f"{definition.kind}.after_{step.name}")
        except SagaBusy:
            self._leases.pop(ctx.saga_id, None)
            raise
        except Pause as pause:
            await self._finish(  # (records a held-back step too)
                ctx,
                "WAITING",
                next_phase=None,
                error_code=pause.error.code,
                error_message=pause.error.message,
            )
            raise pause.error from None
        except Abort as abort:
            await self._flush(ctx)
            await self._compensate(definition, ctx, phase, abort.error)
            raise abort.error from None
        except Exception as exc:
            await self._flush(ctx)
            error = exc if isinstance(exc, ApiError) else None
            if error is None and is_outage(exc):
                # the database went away under the step: "try again", like a service outage
                log.warning("saga %s step %s: database unavailable: %s", ctx.saga_id, current, exc)
                error = ApiError("SERVICE_UNAVAILABLE", "database unavailable")
            if error is None:
                log.exception("saga %s step %s failed", ctx.saga_id, current)
            if self._must_go_forward(definition, ctx, current, error):
                # Past (or possibly past) the point of no return: never compensate; leave it
                # RUNNING with the lease dropped so recovery retries the idempotent steps.
                await self._finish(ctx, "RUNNING")
                raise ApiError(
                    "SERVICE_UNAVAILABLE", "the order is being completed; ask again shortly"
                ) from None
            error = error or ApiError("INTERNAL_ERROR", "a step failed; the saga was rolled back")
            await self._compensate(definition, ctx, phase, error)
            raise error from None
        last = phase == definition.phase_names()[-1]
        status = "COMPLETED" if last else "WAITING"
        result = ctx.results.get(definition.answer_step) if last else None
        await self._finish(
            ctx,
            status,
            result=json.dumps(result) if last else None,
            next_phase=None,
            error_code=None,
            error_message=None,
        )
        return SagaRecord(
            saga_id=ctx.saga_id,
            kind=ctx.kind,
            status=status,
            phase=phase,
            data=ctx.data,
            result=result,
            error_code=None,
            error_message=None,
            deadline=deadline,
            reference_id=reference_id,
            outputs=ctx.results,
        )

    @staticmethod
    def _last_effect(definition: SagaDefinition, phase: str, step: Step, ctx: SagaContext) -> bool:
        """Whether no durable step of this saga follows `step` in its phase."""
        steps = definition.phases[phase]
        after = steps[steps.index(step) + 1 :]
        return not any(s.durable and s.applies(ctx.data) for s in after)

    @staticmethod
    def _must_go_forward(
        definition: SagaDefinition, ctx: SagaContext, step: str, error: ApiError | None
    ) -> bool:
        if definition.pivot is None:
            return False
        if definition.pivot in ctx.done:
            return True
        # The pivot itself failed without a definite answer: it may have taken effect.
        unknown = error is None or error.code in ("SERVICE_UNAVAILABLE", "INTERNAL_ERROR")
        return step == definition.pivot and unknown

    async def compensate(self, saga_id: str, error: ApiError) -> SagaRecord:
        """Compensate a WAITING saga (hold expired, OTP attempts used up). SagaBusy if driven."""
        taken = await self._take_lease(
            saga_id, allowed=("WAITING",), status="COMPENSATING", phase=None
        )
        if taken is None:
            if await self.get(saga_id) is None:
                raise KeyError(saga_id)
            raise SagaBusy(saga_id)
        record, ctx = taken
        self._leases[saga_id] = ctx
        await self._compensate(self.definitions[record.kind], ctx, record.phase, error)
        final = await self.get(saga_id)
        assert final is not None
        return final

    @staticmethod
    def _started(definition: SagaDefinition, ctx: SagaContext, phase: str) -> list[Step]:
        """The steps that may have taken effect: all up to the first one not recorded done (it
        may have been in flight); steps run in order, so none after it ever started."""
        started: list[Step] = []
        for step in definition.steps_through(phase):
            if not step.durable or not step.applies(ctx.data):
                continue  # never recorded (no effect, or not this saga's), so not the frontier
            if step.name in ctx.refused:
                break  # it said it took no effect, and nothing after it ran
            started.append(step)
            if step.name not in ctx.done:
                break
        return started

    async def _compensate(
        self, definition: SagaDefinition, ctx: SagaContext, phase: str, error: ApiError
    ) -> None:
        await self._set_status(ctx, "COMPENSATING", error)
        try:
            for step in reversed(self._started(definition, ctx, phase)):
                if step.compensate is None or step.name in ctx.compensated:
                    continue
                await self._keep_lease(ctx)
                fault_point(f"{definition.kind}.compensate_{step.name}")
                await step.compensate(ctx)
                await self._record(ctx, UNDO + step.name, "COMPENSATED", None)
                ctx.compensated.add(step.name)
            if definition.on_failed is not None:
                await definition.on_failed(ctx, error)
        except SagaBusy:
            self._leases.pop(ctx.saga_id, None)
            raise
        except Exception:
            # Leave it COMPENSATING with the lease dropped: recovery retries until it lands.
            log.exception("saga %s: compensation interrupted; recovery will retry", ctx.saga_id)
            await self._finish(ctx, "COMPENSATING")
            return
        await self._finish(ctx, "FAILED")
        log.info(
            "saga failed and compensated",
            extra={"fields": {"saga_id": ctx.saga_id, "error_code": error.code}},
        )

    # ----- recovery -----
    async def recover_once(self, limit: int = 100) -> int:
        """Take over sagas left by a dead runner, and compensate WAITING sagas past deadline."""
        now = self.clock()
        async with self._db.connect() as conn:
            stranded = (
                await conn.execute(
                    sa.select(sagas.c.saga_id, sagas.c.status)
                    .where(sagas.c.status.in_(ACTIVE), sagas.c.lease_until < now)
                    .limit(limit)
                )
            ).all()
            overdue = (
                await conn.execute(
                    sa.select(sagas.c.saga_id, sagas.c.kind)
                    .where(sagas.c.status == "WAITING", sagas.c.deadline < now)
                    .limit(limit)
                )
            ).all()
            requested = (
                await conn.execute(
                    sa.select(sagas.c.saga_id, sagas.c.next_phase)
                    .where(
                        sagas.c.status == "WAITING",
                        sagas.c.next_phase.is_not(None),
                        sagas.c.updated_at < now - self.lease_seconds,
                    )
                    .limit(limit)
                )
            ).all()
        handled = 0
        for row in requested:
            try:
                await self.run_phase(row.saga_id, row.next_phase)
            except (SagaBusy, KeyError, ApiError):
                pass  # busy, gone, or the phase paused/failed and recorded why
            handled += 1
        for row in stranded:
            handled += await self._recover(row.saga_id, row.status)
        for row in overdue:
            error = self.definitions[row.kind].deadline_error or ApiError(
                "SERVICE_UNAVAILABLE", "saga deadline passed"
            )
            try:
                await self.compensate(row.saga_id, error)
                handled += 1
            except (SagaBusy, KeyError):
                pass
        return handled

    async def _recover(self, saga_id: str, status: str) -> int:
        taken = await self._take_lease(saga_id, allowed=(status,), status=status, phase=None)
        if taken is None:
            return 0
        record, ctx = taken
        log.warning("recovering saga", extra={"fields": {"saga_id": saga_id, "status": status}})
        definition = self.definitions[record.kind]
        try:
            past_pivot = definition.pivot is not None and definition.pivot in ctx.done
            if status == "RUNNING" and (record.phase in definition.forward_phases or past_pivot):
                try:
                    await self._run_phase(
                        definition, ctx, record.phase, record.deadline, record.reference_id
                    )
                except ApiError:
                    pass  # the phase paused, compensated or stays for the next pass; all recorded
                return 1
            self._leases[saga_id] = ctx
            error = record.error() or ApiError("SERVICE_UNAVAILABLE", "interrupted; rolled back")
            await self._compensate(definition, ctx, record.phase, error)
        except SagaBusy:
            return 0
        return 1

    async def run_recovery(self, interval: float, rounds: Rounds) -> None:
        """Background task: recovery and the deadline sweep, until `rounds` is stopped (between
        passes, so a pass never stops halfway through a saga's compensation)."""
        while not rounds.stopping:
            try:
                await self.recover_once()
            except Exception:
                log.exception("saga recovery pass failed")
            if not await rounds.pause(interval):
                return
