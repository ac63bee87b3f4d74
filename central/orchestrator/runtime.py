"""What the orchestrator opens at start: its own database (the saga log), the saga runner with
its recovery and hold-deadline sweep, the Idempotency-Key store, the event cache, and — when a
broker is configured — the hold queue and its release consumer."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from central.config import Settings
from central.db import make_engine, migrate
from central.direct_sql import DirectPool
from central.messaging import HoldQueue
from central.orchestrator.backends import Backends
from central.orchestrator.entry_log import STEPS as ENTRY_LOG_STEPS
from central.orchestrator.entry_log import EntryLogOutbox
from central.orchestrator.event_cache import EventCache
from central.orchestrator.gate_scans import STEPS as GATE_SCAN_STEPS
from central.orchestrator.gate_scans import GateScanStore
from central.orchestrator.idempotency import IdempotencyStore
from central.orchestrator.rate_limits import STEPS as RATE_LIMIT_STEPS
from central.orchestrator.rate_limits import RateLimits
from central.orchestrator.sagas.disputes import dispute_close_saga, dispute_open_saga
from central.orchestrator.sagas.purchase import HOLD_EXPIRED, purchase_saga
from central.orchestrator.sagas.refunds import Refunds, cancel_event_saga, order_refund_saga
from central.orchestrator.sagas.transfer import reverse_saga, transfer_saga
from central.orchestrator.shedding import InFlightLimit
from central.orchestrator.short_codes import STEPS as SHORT_CODE_STEPS
from central.orchestrator.short_codes import ShortCodeStore
from central.orchestrator.verification import Verifier
from central.rounds import Rounds
from central.saga import SagaBusy, SagaRunner
from central.saga.schema import STEP_LOG_STEPS, STEPS
from central.saga.wakeups import Wakeups
from central.signing import KeyRing

log = logging.getLogger(__name__)


async def migrate_database(engine: AsyncEngine) -> None:
    await migrate(
        engine,
        # one version sequence for the whole database: a new module's step takes the next number
        [
            *STEPS,
            *GATE_SCAN_STEPS,
            *SHORT_CODE_STEPS,
            *ENTRY_LOG_STEPS,
            *RATE_LIMIT_STEPS,
            *STEP_LOG_STEPS,
        ],
    )


def load_keyring(settings: Settings) -> KeyRing:
    if settings.signing_keys_dir is not None:
        return KeyRing.from_dir(settings.signing_keys_dir)
    return KeyRing.load_or_create(settings.data_dir)


async def prepare(settings: Settings) -> None:
    """What workers would otherwise race for at their first start (SQLite has no migration
    lock; the first signing key is created once): done by the supervisor before they start."""
    engine = await make_engine(settings.database_url_for("orchestrator"))
    try:
        await migrate_database(engine)
    finally:
        await engine.dispose()
    load_keyring(settings)


@dataclass
class Runtime:
    settings: Settings
    backends: Backends
    engine: AsyncEngine
    runner: SagaRunner
    idempotency: IdempotencyStore
    events: EventCache
    holds: HoldQueue | None
    keyring: KeyRing
    verifier: Verifier
    gate_scans: GateScanStore
    verify_limit: InFlightLimit
    rate_limits: RateLimits
    short_codes: ShortCodeStore
    wakeups: Wakeups
    # background loops, each stopped between its rounds (central/rounds.py)
    loops: list[tuple[Rounds, asyncio.Task[None]]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings, backends: Backends) -> Runtime:
        engine = await make_engine(settings.database_url_for("orchestrator"))
        await migrate_database(engine)
        # Requests waiting for another request's saga or Idempotency-Key are woken, not polling:
        # in this process directly, from other processes by PostgreSQL NOTIFY.
        wakeups = Wakeups()
        await wakeups.listen(engine)
        keyring = load_keyring(settings)
        events = EventCache(backends.events)
        entry_log = EntryLogOutbox(engine, backends.inventory)
        holds = None
        if settings.amqp_url:
            holds = HoldQueue(settings.amqp_url, settings.hold_ttl, prefix=settings.amqp_prefix)
            await holds.start()
        # The refund sagas end waiting transfers through the runner they themselves run in.
        runners: list[SagaRunner] = []
        refunds = Refunds(backends, events, lambda: runners[0])
        runner = SagaRunner(
            engine,
            [
                purchase_saga(backends, holds, max_holds_per_user=settings.max_holds_per_user),
                transfer_saga(backends),
                reverse_saga(backends),
                cancel_event_saga(refunds),
                order_refund_saga(refunds),
                dispute_open_saga(backends),
                dispute_close_saga(backends),
            ],
            lease_seconds=settings.saga_lease,
            wakeups=wakeups,
        )
        runners.append(runner)
        runtime = cls(
            settings=settings,
            backends=backends,
            engine=engine,
            runner=runner,
            idempotency=IdempotencyStore(engine, wakeups=wakeups),
            events=events,
            holds=holds,
            keyring=keyring,
            verifier=Verifier(
                backends,
                events,
                keyring,
                skew=settings.token_skew,
                call_timeout=settings.verify_timeout,
                entry_log=entry_log,
            ),
            verify_limit=InFlightLimit(settings.verify_concurrency),
            gate_scans=GateScanStore(engine),
            rate_limits=RateLimits(engine),
            short_codes=ShortCodeStore(engine),
            wakeups=wakeups,
        )
        if settings.worker_index == 0:  # one poller is enough (central/workers.py)
            recovery = Rounds("saga recovery")
            task = asyncio.create_task(runner.run_recovery(settings.sweep_interval, recovery))
            runtime.loops.append((recovery, task))
        entry_log.start()  # also drains rows a previous run of this database left behind
        if holds is not None:
            await holds.consume(runtime.on_hold_expired)
        return runtime

    async def on_hold_expired(self, message: dict[str, Any]) -> None:
        """A hold's TTL ran out in the broker: compensate its saga if it still waits for payment,
        and only for the hold in the message (a newer hold of the seat is another saga)."""
        saga_id = str(message.get("saga_id", ""))
        record = await self.runner.get(saga_id)
        if record is None or record.data.get("hold_id") != message.get("hold_id"):
            return
        if record.status != "WAITING":
            return  # paid, already failed, or being paid now (ConfirmSeat checks the expiry)
        with suppress(SagaBusy):
            await self.runner.compensate(saga_id, HOLD_EXPIRED)

    async def close(self) -> None:
        await self.verifier.entry_log.close()
        for rounds, task in self.loops:
            await rounds.stop(task, grace=5.0)
        if self.holds is not None:
            await self.holds.close()
        await self.wakeups.close()
        await DirectPool.close_for(self.engine)
        await self.engine.dispose()
