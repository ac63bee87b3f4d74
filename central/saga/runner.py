"""The saga runner.

A saga is a list of phases, each a list of steps with compensations. A phase runs under a lease
(owner, expiry — taken by one conditional UPDATE), and each step's outcome is committed before the
next step starts. Between phases the saga WAITS (the purchase waits for /api/pay); a waiting saga
past its deadline is compensated. Compensation runs every step of the phases begun so far, in reverse:
each compensation is safe when its step never took effect, so a step interrupted mid-flight (we cannot
know whether it took effect) is compensated too. After a crash, recovery takes over sagas whose lease
expired: a phase marked `forward` is retried to completion (its steps are idempotent by the key
`saga id : step`), any other is compensated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import autocommit, is_outage
from central.errors import ApiError
from central.faults import fault_point
from central.saga.schema import sagas

log = logging.getLogger(__name__)

ACTIVE = ("RUNNING", "COMPENSATING")


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


class SagaBusy(Exception):
    """Another runner holds this saga's lease."""


@dataclass
class SagaContext:
    saga_id: str
    kind: str
    data: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, record: SagaRecord) -> SagaContext:
        return cls(record.saga_id, record.kind, record.data, record.results(), dict(record.steps))

    def key(self, step: str) -> str:
        """The idempotency key a step sends, so a retry repeats no effect."""
        return f"{self.saga_id}:{step}"


Action = Callable[[SagaContext], Awaitable[Any]]
Compensation = Callable[[SagaContext], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    name: str
    action: Action
    compensate: Compensation | None = None
    # A step that changes nothing anywhere (a check, building the answer) is not worth a write:
    # after a crash it simply runs again.
    durable: bool = True


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


@dataclass
class SagaRecord:
    saga_id: str
    kind: str
    status: str
    phase: str
    data: dict[str, Any]
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    deadline: float | None
    reference_id: str | None
    steps: dict[str, dict[str, Any]]

    @property
    def done_steps(self) -> set[str]:
        return {name for name, step in self.steps.items() if step["status"] == "DONE"}

    def results(self) -> dict[str, Any]:
        return {n: s.get("result") for n, s in self.steps.items() if s["status"] == "DONE"}

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
    ) -> None:
        self.engine = engine
        # Single statements need no BEGIN/COMMIT round trips (each one costs a syscall pair).
        self._db = autocommit(engine)
        self.definitions = {d.kind: d for d in definitions}
        self.owner = f"runner-{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        self.clock = clock

    # ----- reads -----
    async def get(self, saga_id: str) -> SagaRecord | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(sa.select(sagas).where(sagas.c.saga_id == saga_id))).first()
        return self._record(row._mapping) if row is not None else None

    async def find_by_reference(self, reference_id: str) -> SagaRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sagas)
                    .where(sagas.c.reference_id == reference_id)
                    .order_by(sagas.c.created_at.desc())
                    .limit(1)
                )
            ).first()
        return self._record(row._mapping) if row is not None else None

    @staticmethod
    def _record(row: Any) -> SagaRecord:
        return SagaRecord(
            saga_id=row["saga_id"],
            kind=row["kind"],
            status=row["status"],
            phase=row["phase"],
            data=json.loads(row["data"]),
            result=json.loads(row["result"]) if row["result"] else None,
            error_code=row["error_code"],
            error_message=row["error_message"],
            deadline=row["deadline"],
            reference_id=row["reference_id"],
            steps=json.loads(row["steps"] or "{}"),
        )

    # ----- lease -----
    async def _take_lease(
        self, saga_id: str, *, allowed: tuple[str, ...], status: str, phase: str | None
    ) -> SagaRecord | None:
        """Take the saga (one conditional UPDATE); answer it as it now is, or None if taken."""
        now = self.clock()
        values: dict[str, Any] = {
            "lease_owner": self.owner,
            "lease_until": now + self.lease_seconds,
            "status": status,
            "updated_at": now,
        }
        if phase is not None:
            values["phase"] = phase
        # Free when WAITING in an allowed state, or an active saga whose holder's lease ran out.
        free = sa.or_(
            sagas.c.status.in_([s for s in allowed if s not in ACTIVE]),
            sa.and_(
                sagas.c.status.in_([s for s in allowed if s in ACTIVE]), sagas.c.lease_until < now
            ),
        )
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    sagas.update()
                    .where(sagas.c.saga_id == saga_id, free)
                    .values(**values)
                    .returning(*sagas.c)
                )
            ).first()
        return self._record(row._mapping) if row is not None else None

    async def _write(self, ctx: SagaContext, **values: Any) -> None:
        """Persist the saga's state, only while we still hold its lease."""
        now = self.clock()
        values.setdefault("lease_until", now + self.lease_seconds)
        async with self._db.connect() as conn:
            changed = await conn.execute(
                sagas.update()
                .where(sagas.c.saga_id == ctx.saga_id, sagas.c.lease_owner == self.owner)
                .values(
                    data=json.dumps(ctx.data),
                    steps=json.dumps(ctx.steps),
                    updated_at=now,
                    **values,
                )
            )
        if changed.rowcount != 1:
            # Another runner took the saga over (our lease lapsed): stop driving it.
            raise SagaBusy(ctx.saga_id)

    async def heartbeat(self, saga_id: str) -> None:
        """Extend our lease from inside a long step (a cancellation refunding thousands of
        orders), so recovery does not take the saga over while it is still being driven.
        SagaBusy when the lease is no longer ours."""
        now = self.clock()
        async with self._db.connect() as conn:
            changed = await conn.execute(
                sagas.update()
                .where(sagas.c.saga_id == saga_id, sagas.c.lease_owner == self.owner)
                .values(lease_until=now + self.lease_seconds, updated_at=now)
            )
        if changed.rowcount != 1:
            raise SagaBusy(saga_id)

    async def _record_step(self, ctx: SagaContext, step: str, status: str, result: Any) -> None:
        ctx.steps[step] = {"status": status, "result": result}
        if status == "DONE":
            ctx.results[step] = result
        await self._write(ctx)

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
        """Create the saga (already leased by us) and run its first phase."""
        definition = self.definitions[kind]
        saga_id = saga_id or str(uuid.uuid4())
        first = definition.phase_names()[0]
        now = self.clock()
        async with self._db.connect() as conn:
            await conn.execute(
                sagas.insert().values(
                    saga_id=saga_id,
                    kind=kind,
                    status="RUNNING",
                    phase=first,
                    data=json.dumps(data),
                    steps="{}",
                    lease_owner=self.owner,
                    lease_until=now + self.lease_seconds,
                    deadline=deadline,
                    reference_id=reference_id,
                    created_at=now,
                    updated_at=now,
                )
            )
        ctx = SagaContext(saga_id, kind, data)
        return await self._run_phase(definition, ctx, first, deadline, reference_id)

    async def run_phase(self, saga_id: str, phase: str) -> SagaRecord:
        """Run `phase` of a WAITING saga. SagaBusy when another runner drives it now."""
        record = await self._take_lease(
            saga_id, allowed=("WAITING",), status="RUNNING", phase=phase
        )
        if record is None:
            if await self.get(saga_id) is None:
                raise KeyError(saga_id)
            raise SagaBusy(saga_id)
        definition = self.definitions[record.kind]
        return await self._run_phase(
            definition, SagaContext.of(record), phase, record.deadline, record.reference_id
        )

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
        current = ""
        try:
            for step in definition.phases[phase]:
                if step.name in ctx.results:
                    continue
                fault_point(f"{definition.kind}.before_{step.name}")
                current = step.name  # from here the step may have taken effect
                result = await step.action(ctx)
                if step.durable:
                    await self._record_step(ctx, step.name, "DONE", result)
                fault_point(f"{definition.kind}.after_{step.name}")
        except SagaBusy:
            raise
        except Pause as pause:
            await self._write(
                ctx,
                status="WAITING",
                lease_until=0,
                next_phase=None,
                error_code=pause.error.code,
                error_message=pause.error.message,
            )
            raise pause.error from None
        except Abort as abort:
            await self._compensate(definition, ctx, phase, abort.error)
            raise abort.error from None
        except Exception as exc:
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
                await self._write(ctx, lease_until=0)
                raise ApiError(
                    "SERVICE_UNAVAILABLE", "the order is being completed; ask again shortly"
                ) from None
            error = error or ApiError("INTERNAL_ERROR", "a step failed; the saga was rolled back")
            await self._compensate(definition, ctx, phase, error)
            raise error from None
        last = phase == definition.phase_names()[-1]
        status = "COMPLETED" if last else "WAITING"
        result = ctx.data.get("result") if last else None
        await self._write(
            ctx,
            status=status,
            result=json.dumps(result) if last else None,
            lease_until=0,
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
            steps=ctx.steps,
        )

    @staticmethod
    def _must_go_forward(
        definition: SagaDefinition, ctx: SagaContext, step: str, error: ApiError | None
    ) -> bool:
        if definition.pivot is None:
            return False
        if definition.pivot in ctx.results:
            return True
        # The pivot itself failed without a definite answer: it may have taken effect.
        unknown = error is None or error.code in ("SERVICE_UNAVAILABLE", "INTERNAL_ERROR")
        return step == definition.pivot and unknown

    async def compensate(self, saga_id: str, error: ApiError) -> SagaRecord:
        """Compensate a WAITING saga (hold expired, OTP attempts used up). SagaBusy if driven."""
        record = await self._take_lease(
            saga_id, allowed=("WAITING",), status="COMPENSATING", phase=None
        )
        if record is None:
            if await self.get(saga_id) is None:
                raise KeyError(saga_id)
            raise SagaBusy(saga_id)
        definition = self.definitions[record.kind]
        await self._compensate(definition, SagaContext.of(record), record.phase, error)
        final = await self.get(saga_id)
        assert final is not None
        return final

    @staticmethod
    def _started(definition: SagaDefinition, ctx: SagaContext, phase: str) -> list[Step]:
        """The steps that may have taken effect: all up to the first one not recorded done (it
        may have been in flight); steps run in order, so none after it ever started."""
        started: list[Step] = []
        for step in definition.steps_through(phase):
            started.append(step)
            if not step.durable:
                continue  # never recorded (it changes nothing), so it cannot mark the frontier
            recorded = ctx.steps.get(step.name, {}).get("status")
            if recorded not in ("DONE", "COMPENSATED"):
                break
        return started

    async def _compensate(
        self, definition: SagaDefinition, ctx: SagaContext, phase: str, error: ApiError
    ) -> None:
        await self._write(
            ctx, status="COMPENSATING", error_code=error.code, error_message=error.message
        )
        try:
            for step in reversed(self._started(definition, ctx, phase)):
                if step.compensate is None or ctx.steps.get(step.name, {}).get("status") == (
                    "COMPENSATED"
                ):
                    continue
                fault_point(f"{definition.kind}.compensate_{step.name}")
                await step.compensate(ctx)
                await self._record_step(ctx, step.name, "COMPENSATED", None)
            if definition.on_failed is not None:
                await definition.on_failed(ctx, error)
        except SagaBusy:
            raise
        except Exception:
            # Leave it COMPENSATING with the lease dropped: recovery retries until it lands.
            log.exception("saga %s: compensation interrupted; recovery will retry", ctx.saga_id)
            await self._write(ctx, lease_until=0)
            return
        await self._write(ctx, status="FAILED", lease_until=0)
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
        record = await self._take_lease(saga_id, allowed=(status,), status=status, phase=None)
        if record is None:
            return 0
        log.warning("recovering saga", extra={"fields": {"saga_id": saga_id, "status": status}})
        definition = self.definitions[record.kind]
        ctx = SagaContext.of(record)
        try:
            past_pivot = definition.pivot is not None and definition.pivot in record.done_steps
            if status == "RUNNING" and (record.phase in definition.forward_phases or past_pivot):
                try:
                    await self._run_phase(
                        definition, ctx, record.phase, record.deadline, record.reference_id
                    )
                except ApiError:
                    pass  # the phase paused, compensated or stays for the next pass; all recorded
                return 1
            error = record.error() or ApiError("SERVICE_UNAVAILABLE", "interrupted; rolled back")
            await self._compensate(definition, ctx, record.phase, error)
        except SagaBusy:
            return 0
        return 1

    async def run_recovery(self, interval: float) -> None:
        """Background task: recovery and the deadline sweep, forever."""
        while True:
            try:
                await self.recover_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("saga recovery pass failed")
            await asyncio.sleep(interval)
