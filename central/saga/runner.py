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

from central.errors import ApiError
from central.faults import fault_point
from central.saga.schema import saga_steps, sagas

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
    done_steps: set[str]

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
        self.definitions = {d.kind: d for d in definitions}
        self.owner = f"runner-{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        self.clock = clock

    # ----- reads -----
    async def get(self, saga_id: str) -> SagaRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(sagas).where(sagas.c.saga_id == saga_id))).first()
            if row is None:
                return None
            done = await conn.execute(
                sa.select(saga_steps.c.step, saga_steps.c.result).where(
                    saga_steps.c.saga_id == saga_id, saga_steps.c.status == "DONE"
                )
            )
            steps = {r.step for r in done}
        return self._record(row._mapping, steps)

    async def find_by_reference(self, reference_id: str) -> SagaRecord | None:
        async with self.engine.connect() as conn:
            saga_id = await conn.scalar(
                sa.select(sagas.c.saga_id)
                .where(sagas.c.reference_id == reference_id)
                .order_by(sagas.c.created_at.desc())
                .limit(1)
            )
        return await self.get(saga_id) if saga_id else None

    @staticmethod
    def _record(row: Any, done: set[str]) -> SagaRecord:
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
            done_steps=done,
        )

    # ----- lease -----
    async def _take_lease(
        self, saga_id: str, *, allowed: tuple[str, ...], status: str, phase: str | None
    ) -> bool:
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
            sa.and_(sagas.c.status.in_([s for s in allowed if s not in ACTIVE])),
            sa.and_(
                sagas.c.status.in_([s for s in allowed if s in ACTIVE]), sagas.c.lease_until < now
            ),
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sagas.update().where(sagas.c.saga_id == saga_id, free).values(**values)
            )
        return result.rowcount == 1

    async def _write(self, saga_id: str, **values: Any) -> None:
        values["updated_at"] = self.clock()
        async with self.engine.begin() as conn:
            await conn.execute(
                sagas.update()
                .where(sagas.c.saga_id == saga_id, sagas.c.lease_owner == self.owner)
                .values(**values)
            )

    async def _step_done(self, ctx: SagaContext, step: str, result: Any) -> None:
        now = self.clock()
        async with self.engine.begin() as conn:
            await conn.execute(
                saga_steps.insert().values(
                    saga_id=ctx.saga_id,
                    step=step,
                    status="DONE",
                    result=json.dumps(result),
                    updated_at=now,
                )
            )
            await conn.execute(
                sagas.update()
                .where(sagas.c.saga_id == ctx.saga_id)
                .values(
                    data=json.dumps(ctx.data),
                    lease_until=now + self.lease_seconds,
                    updated_at=now,
                )
            )

    async def _load_results(self, ctx: SagaContext) -> None:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(saga_steps.c.step, saga_steps.c.result).where(
                    saga_steps.c.saga_id == ctx.saga_id, saga_steps.c.status == "DONE"
                )
            )
            ctx.results = {r.step: json.loads(r.result) if r.result else None for r in rows}

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
        async with self.engine.begin() as conn:
            await conn.execute(
                sagas.insert().values(
                    saga_id=saga_id,
                    kind=kind,
                    status="RUNNING",
                    phase=first,
                    data=json.dumps(data),
                    lease_owner=self.owner,
                    lease_until=now + self.lease_seconds,
                    deadline=deadline,
                    reference_id=reference_id,
                    created_at=now,
                    updated_at=now,
                )
            )
        return await self._run_phase(definition, saga_id, first)

    async def run_phase(self, saga_id: str, phase: str) -> SagaRecord:
        """Run `phase` of a WAITING saga. SagaBusy when another runner drives it now."""
        record = await self.get(saga_id)
        if record is None:
            raise KeyError(saga_id)
        definition = self.definitions[record.kind]
        if not await self._take_lease(saga_id, allowed=("WAITING",), status="RUNNING", phase=phase):
            raise SagaBusy(saga_id)
        return await self._run_phase(definition, saga_id, phase)

    async def _run_phase(self, definition: SagaDefinition, saga_id: str, phase: str) -> SagaRecord:
        record = await self.get(saga_id)
        assert record is not None
        ctx = SagaContext(saga_id, record.kind, record.data)
        await self._load_results(ctx)
        current = ""
        try:
            for step in definition.phases[phase]:
                if step.name in ctx.results:
                    continue
                fault_point(f"{definition.kind}.before_{step.name}")
                current = step.name  # from here the step may have taken effect
                result = await step.action(ctx)
                ctx.results[step.name] = result
                await self._step_done(ctx, step.name, result)
                fault_point(f"{definition.kind}.after_{step.name}")
        except Pause as pause:
            await self._write(
                saga_id,
                status="WAITING",
                data=json.dumps(ctx.data),
                lease_until=0,
                error_code=pause.error.code,
                error_message=pause.error.message,
            )
            raise pause.error from None
        except Abort as abort:
            await self._compensate(definition, ctx, phase, abort.error)
            raise abort.error from None
        except Exception as exc:
            error = exc if isinstance(exc, ApiError) else None
            if error is None:
                log.exception("saga %s step %s failed", saga_id, current)
            if self._must_go_forward(definition, ctx, current, error):
                # Past (or possibly past) the point of no return: never compensate; leave it
                # RUNNING with the lease dropped so recovery retries the idempotent steps.
                await self._write(saga_id, data=json.dumps(ctx.data), lease_until=0)
                raise ApiError(
                    "SERVICE_UNAVAILABLE", "the order is being completed; ask again shortly"
                ) from None
            error = error or ApiError("INTERNAL_ERROR", "a step failed; the saga was rolled back")
            await self._compensate(definition, ctx, phase, error)
            raise error from None
        phases = definition.phase_names()
        if phase == phases[-1]:
            await self._write(
                saga_id,
                status="COMPLETED",
                data=json.dumps(ctx.data),
                result=json.dumps(ctx.data.get("result")),
                lease_until=0,
                error_code=None,
                error_message=None,
            )
        else:
            await self._write(
                saga_id,
                status="WAITING",
                data=json.dumps(ctx.data),
                lease_until=0,
                error_code=None,
                error_message=None,
            )
        final = await self.get(saga_id)
        assert final is not None
        return final

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
        record = await self.get(saga_id)
        if record is None:
            raise KeyError(saga_id)
        if not await self._take_lease(
            saga_id, allowed=("WAITING",), status="COMPENSATING", phase=None
        ):
            raise SagaBusy(saga_id)
        definition = self.definitions[record.kind]
        ctx = SagaContext(saga_id, record.kind, record.data)
        await self._load_results(ctx)
        await self._compensate(definition, ctx, record.phase, error)
        final = await self.get(saga_id)
        assert final is not None
        return final

    async def _compensate(
        self, definition: SagaDefinition, ctx: SagaContext, phase: str, error: ApiError
    ) -> None:
        await self._write(
            ctx.saga_id,
            status="COMPENSATING",
            data=json.dumps(ctx.data),
            error_code=error.code,
            error_message=error.message,
        )
        try:
            for step in reversed(definition.steps_through(phase)):
                if step.compensate is None:
                    continue
                fault_point(f"{definition.kind}.compensate_{step.name}")
                await step.compensate(ctx)
                await self._mark_compensated(ctx.saga_id, step.name)
            if definition.on_failed is not None:
                await definition.on_failed(ctx, error)
        except Exception:
            # Leave it COMPENSATING with the lease dropped: recovery retries until it lands.
            log.exception("saga %s: compensation interrupted; recovery will retry", ctx.saga_id)
            await self._write(ctx.saga_id, lease_until=0)
            return
        await self._write(ctx.saga_id, status="FAILED", lease_until=0)
        log.info(
            "saga failed and compensated",
            extra={"fields": {"saga_id": ctx.saga_id, "error_code": error.code}},
        )

    async def _mark_compensated(self, saga_id: str, step: str) -> None:
        now = self.clock()
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                saga_steps.update()
                .where(saga_steps.c.saga_id == saga_id, saga_steps.c.step == step)
                .values(status="COMPENSATED", updated_at=now)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    saga_steps.insert().values(
                        saga_id=saga_id, step=step, status="COMPENSATED", updated_at=now
                    )
                )
            await conn.execute(
                sagas.update()
                .where(sagas.c.saga_id == saga_id)
                .values(lease_until=now + self.lease_seconds, updated_at=now)
            )

    # ----- recovery -----
    async def recover_once(self, limit: int = 100) -> int:
        """Take over sagas left by a dead runner, and compensate WAITING sagas past deadline."""
        now = self.clock()
        async with self.engine.connect() as conn:
            stranded = (
                await conn.execute(
                    sa.select(sagas.c.saga_id, sagas.c.status, sagas.c.phase, sagas.c.kind)
                    .where(sagas.c.status.in_(ACTIVE), sagas.c.lease_until < now)
                    .limit(limit)
                )
            ).all()
            overdue = (
                await conn.execute(
                    sa.select(sagas.c.saga_id)
                    .where(sagas.c.status == "WAITING", sagas.c.deadline < now)
                    .limit(limit)
                )
            ).all()
        handled = 0
        for row in stranded:
            handled += await self._recover(row.saga_id, row.status, row.phase, row.kind)
        for row in overdue:
            record = await self.get(row.saga_id)
            if record is None:
                continue
            error = self.definitions[record.kind].deadline_error or ApiError(
                "SERVICE_UNAVAILABLE", "saga deadline passed"
            )
            try:
                await self.compensate(row.saga_id, error)
                handled += 1
            except SagaBusy:
                pass
        return handled

    async def _recover(self, saga_id: str, status: str, phase: str, kind: str) -> int:
        definition = self.definitions[kind]
        if not await self._take_lease(saga_id, allowed=(status,), status=status, phase=None):
            return 0
        log.warning("recovering saga", extra={"fields": {"saga_id": saga_id, "status": status}})
        record = await self.get(saga_id)
        assert record is not None
        if status == "RUNNING" and phase in definition.forward_phases:
            try:
                await self._run_phase(definition, saga_id, phase)
            except ApiError:
                pass  # the phase compensated itself and recorded why
            return 1
        ctx = SagaContext(saga_id, kind, record.data)
        await self._load_results(ctx)
        error = record.error() or ApiError("SERVICE_UNAVAILABLE", "interrupted; rolled back")
        await self._compensate(definition, ctx, phase, error)
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
