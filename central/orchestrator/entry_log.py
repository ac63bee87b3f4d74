"""The entry log's outbox: every scan's log row is kept in the orchestrator's own database until
inventory (the owner of the entry log) has it, so no row is lost to a failing inventory, a broker
or database restart, or a killed orchestrator.

Why an outbox here rather than the gate's re-upload: online and staff scans are never uploaded
again (the gate holds central's answer, and a staff phone holds nothing), so only central can
keep them. A row goes first into `entry_log_outbox` (one autocommit INSERT, awaited before the
scan's answer is stored or sent), then a drain task writes it to inventory — idempotent by its
`log_id`, named after the scan id, so a retry, two replicas draining the same row or a scan decided
twice write it once — and deletes it. An admission's row is kept provisionally before inventory is
asked for the admission, so a process killed in between leaves it behind; the drain writes such a
row only if inventory's seat shows that scan's admission. While the orchestrator's own database is
down the row waits in memory and the drain keeps trying both ways; only a process killed during
such an outage can lose it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from contextlib import suppress

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from central.clients.inventory import InventoryClient, InventoryError, RowRefused
from central.db import Step, autocommit, create_tables
from central.direct_sql import DirectPool, HotStatement
from central.errors import ApiError
from central.rounds import Rounds
from proto import inventory_pb2 as pb

log = logging.getLogger(__name__)

metadata = sa.MetaData()

entry_log_outbox = sa.Table(
    "entry_log_outbox",
    metadata,
    sa.Column("log_id", sa.String(36), primary_key=True),
    sa.Column("entry", sa.LargeBinary, nullable=False),  # the serialized EntryLogEntry
    sa.Column("created_at", sa.Float, nullable=False),
    # kept before an admission is asked of inventory; replaced by the scan's final row
    sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()),
)

# On the scan path (every scan but an admission keeps a row here): built once, run without
# SQLAlchemy's execution layer (central/direct_sql.py)
KEEP = HotStatement(entry_log_outbox.insert())
# the final row replaces this scan's provisional one, never a final one
FINALIZE = HotStatement(
    entry_log_outbox.update()
    .where(
        entry_log_outbox.c.log_id == sa.bindparam("p_log_id"),
        entry_log_outbox.c.provisional,
    )
    .values(
        entry=sa.bindparam("p_entry"), created_at=sa.bindparam("p_created_at"), provisional=False
    )
)

STEPS = [Step(103, "entry log outbox", create_tables(metadata, "entry_log_outbox"))]

# A scan's row is named after its scan id: a scan decided twice (its answer lost to a crash, then
# uploaded again) still leaves one row, because inventory writes a log id once.
LOG_NAMESPACE = uuid.UUID("6a1d3a8e-2f55-4c1b-9d0e-5f7f2f6f0b21")
# A provisional row with no final row after this long belongs to a process that died mid-scan:
# inventory's seat says whether the admission happened (then the row is written) or not (dropped).
PROVISIONAL_GRACE_S = 10.0
BATCH = 200
WRITE_TIMEOUT = 2.0
STORE_TIMEOUT = 5.0
MAX_BACKOFF = 5.0
MAX_IN_MEMORY = 100_000


class EntryLogOutbox:
    def __init__(
        self, engine: AsyncEngine, inventory: InventoryClient, *, interval: float = 1.0
    ) -> None:
        self.engine = autocommit(engine)
        self.direct = DirectPool.of(engine)
        self.inventory = inventory
        self.interval = interval
        self._stored: dict[str, asyncio.Task[None]] = {}  # scan id -> its INSERT in flight
        self._memory: deque[pb.EntryLogEntry] = deque()  # rows the database did not take
        self._wake = asyncio.Event()
        self._rounds = Rounds("entry log drain")
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    # ----- taking rows -----

    @staticmethod
    def name(entry: pb.EntryLogEntry) -> None:
        if not entry.log_id:  # one id for every retry and every replica: written once
            named = uuid.uuid5(LOG_NAMESPACE, entry.scan_id) if entry.scan_id else uuid.uuid4()
            entry.log_id = str(named)

    async def provisional(self, entry: pb.EntryLogEntry) -> None:
        """Keep the row an admission will have, before inventory is asked for it: a process
        killed between the admission and its final row leaves this one behind, and the drain
        writes it if (and only if) inventory's seat shows the admission. Never raises."""
        self.name(entry)
        row = {
            "log_id": entry.log_id,
            "entry": entry.SerializeToString(),
            "created_at": time.time(),
            "provisional": True,
        }
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                async with self.engine.connect() as conn:
                    await conn.execute(entry_log_outbox.insert().values(**row))
        except IntegrityError:
            pass  # the scan is being decided again (a retry): its row is kept already
        except (DBAPIError, OSError, TimeoutError) as exc:
            log.warning("entry log outbox unavailable for a provisional row: %s", exc)

    def submit(self, entry: pb.EntryLogEntry) -> None:
        """Start keeping one row (never raises, never waits: the scan path calls it)."""
        self.name(entry)
        task = asyncio.create_task(self._store(entry))
        key = entry.scan_id or entry.log_id
        self._stored[key] = task
        task.add_done_callback(lambda _t: self._forget(key, task))

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._stored.get(key) is task:
            del self._stored[key]

    async def kept(self, scan_id: str) -> None:
        """Wait until the row of this scan is in the outbox (or held in memory because the
        database would not take it): after this, answering the scan cannot lose its row."""
        task = self._stored.get(scan_id)
        if task is not None:
            with suppress(Exception):
                await asyncio.shield(task)

    async def _store(self, entry: pb.EntryLogEntry) -> None:
        row = {
            "log_id": entry.log_id,
            "entry": entry.SerializeToString(),
            "created_at": time.time(),
            "provisional": False,
        }
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                try:
                    await self.direct.execute(KEEP, row)  # one statement in the common case
                except IntegrityError:
                    # kept already: a final row stands; a provisional one becomes this one
                    await self.direct.execute(
                        FINALIZE,
                        {
                            "p_log_id": row["log_id"],
                            "p_entry": row["entry"],
                            "p_created_at": row["created_at"],
                        },
                    )
        except (DBAPIError, OSError, TimeoutError) as exc:
            log.warning(
                "entry log outbox unavailable, row %s kept in memory: %s", entry.log_id, exc
            )
            self._remember(entry)
        self._wake.set()

    def _remember(self, entry: pb.EntryLogEntry) -> None:
        if len(self._memory) >= MAX_IN_MEMORY:
            lost = self._memory.popleft()
            self.dropped += 1
            log.error("entry log row %s lost: %d rows wait in memory", lost.log_id, MAX_IN_MEMORY)
        self._memory.append(entry)

    # ----- draining -----

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self, timeout: float = 5.0) -> None:
        """Store what is in flight, stop the drain between rounds, then give it a last round."""
        pending = set(self._stored.values())
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        await self._rounds.stop(self._task, timeout)
        with suppress(TimeoutError, Exception):
            async with asyncio.timeout(timeout):
                await self.drain_once()

    async def _run(self) -> None:
        backoff = self.interval
        while await self._rounds.pause(backoff, self._wake):
            self._wake.clear()
            try:
                done = await self.drain_once()
            except Exception:  # the loop must survive anything one round meets
                log.exception("entry log drain failed")
                done = False
            backoff = self.interval if done else min(backoff * 2, MAX_BACKOFF)

    async def drain_once(self) -> bool:
        """One round: rows held in memory, then a batch of the outbox. True when all went."""
        ok = await self._drain_memory()
        return await self._drain_table() and ok

    async def _drain_memory(self) -> bool:
        while self._memory:
            batch = [self._memory[i] for i in range(min(BATCH, len(self._memory)))]
            if not all(await self._write_many(batch)):
                return False
            for _ in batch:
                self._memory.popleft()
        return True

    async def _drain_table(self) -> bool:
        while True:
            try:
                async with self.engine.connect() as conn:
                    table = entry_log_outbox
                    settled = sa.or_(
                        sa.not_(table.c.provisional),
                        table.c.created_at < time.time() - PROVISIONAL_GRACE_S,
                    )
                    rows = (
                        await conn.execute(
                            sa.select(table.c.log_id, table.c.entry, table.c.provisional)
                            .where(settled)
                            .order_by(table.c.created_at)
                            .limit(BATCH)
                        )
                    ).all()
            except (DBAPIError, OSError) as exc:
                log.warning("entry log outbox unreadable: %s", exc)
                return False
            if not rows:
                return True
            entries = [pb.EntryLogEntry.FromString(r.entry) for r in rows]
            final = [e for e, r in zip(entries, rows, strict=True) if not r.provisional]
            provisional = [e for e, r in zip(entries, rows, strict=True) if r.provisional]
            # the final rows in one call (one statement at inventory); a provisional row asks
            # its seat first, one by one (only a process killed mid-admission leaves one)
            results = await self._write_many(final) if final else []
            results += await asyncio.gather(*(self._resolve(e) for e in provisional))
            done = zip(final + provisional, results, strict=True)
            sent = [e.log_id for e, ok in done if ok]
            if sent:
                try:
                    async with self.engine.connect() as conn:
                        await conn.execute(
                            entry_log_outbox.delete().where(entry_log_outbox.c.log_id.in_(sent))
                        )
                except (DBAPIError, OSError) as exc:
                    log.warning("entry log outbox not cleared (rows rewritten later): %s", exc)
                    return False
            if len(sent) < len(entries) or len(rows) < BATCH:
                return len(sent) == len(entries)

    async def _resolve(self, entry: pb.EntryLogEntry) -> bool:
        """A provisional row whose scan never got its final row: written when inventory shows
        this scan's admission, dropped when it does not (then nothing was admitted, and the gate
        that made the scan uploads what it decided itself). False to try again later."""
        try:
            seat = await self.inventory.find_seat(entry.seat_id, timeout=WRITE_TIMEOUT)
        except ApiError:
            return False
        if seat is None:
            return True
        if seat.status == "CHECKED_IN" and seat.checked_in_scan_id == entry.scan_id:
            return await self._write(entry)
        return True  # dropped: no admission to record

    async def _write(self, entry: pb.EntryLogEntry) -> bool:
        """True once inventory has the row (now or before); False to try again later."""
        return (await self._write_many([entry]))[0]

    async def _write_many(self, entries: list[pb.EntryLogEntry]) -> list[bool]:
        """Per row, in order: True once inventory has it (now or before) or refused it for
        good; False to try again later (the call failed: every row waits)."""
        try:
            answers = await self.inventory.write_entry_logs(entries, timeout=WRITE_TIMEOUT)
        except (ApiError, InventoryError) as exc:
            log.warning("entry log write of %d rows failed, will retry: %s", len(entries), exc)
            return [False] * len(entries)
        for entry, answer in zip(entries, answers, strict=True):
            if isinstance(answer, RowRefused):
                # a bug, not an outage: retrying it forever would never succeed, so it is dropped
                self.dropped += 1
                log.error("entry log row %s refused by inventory: %s", entry.log_id, answer.why)
            else:
                self.written += 1
        return [True] * len(entries)

    async def backlog(self) -> int:
        """Rows not yet in inventory (the outbox table plus memory)."""
        async with self.engine.connect() as conn:
            stored = await conn.scalar(sa.select(sa.func.count()).select_from(entry_log_outbox))
        return int(stored or 0) + len(self._memory)
