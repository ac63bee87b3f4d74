"""The entry log's outbox: a row is kept in the orchestrator's database before the scan is
answered, written to inventory once it answers, and not lost to an inventory outage, to an
orchestrator restart with rows still waiting, or to the orchestrator's own database being down.

Inventory here is a stand-in that fails while `down` and records what it was given: the outbox
talks to it only through `find_seat` and `write_entry_logs`, the seam the real client offers.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from central.clients.inventory import RowRefused
from central.db import make_engine, migrate
from central.errors import ApiError
from central.orchestrator.entry_log import STEPS, EntryLogOutbox
from proto import inventory_pb2 as pb


class FlakyInventory:
    def __init__(self) -> None:
        self.down = False
        self.refuse: set[str] = set()
        self.rows: dict[str, pb.EntryLogEntry] = {}
        self.seats: dict[str, pb.Seat] = {}
        self.calls = 0
        self.batches: list[int] = []  # rows per write call

    async def find_seat(self, seat_id: str, *, timeout: float | None = None) -> pb.Seat | None:
        self.calls += 1
        if self.down:
            raise ApiError("SERVICE_UNAVAILABLE", "inventory unreachable")
        return self.seats.get(seat_id)

    async def write_entry_logs(
        self, entries: list[pb.EntryLogEntry], *, timeout: float | None = None
    ) -> list[bool | RowRefused]:
        self.calls += 1
        self.batches.append(len(entries))
        if self.down:
            raise ApiError("SERVICE_UNAVAILABLE", "inventory unreachable")
        answers: list[bool | RowRefused] = []
        for entry in entries:
            if entry.scan_id in self.refuse:
                answers.append(RowRefused("scan_id: bad"))
                continue
            answers.append(entry.log_id not in self.rows)
            self.rows.setdefault(entry.log_id, entry)
        return answers


def entry() -> pb.EntryLogEntry:
    return pb.EntryLogEntry(scan_id=str(uuid.uuid4()), result="SUCCESS", mode="online")


async def open_engine(tmp_path: Path) -> Any:
    engine = await make_engine(f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}")
    await migrate(engine, STEPS)
    return engine


async def test_rows_wait_out_an_inventory_outage_and_a_restart(tmp_path: Path) -> None:
    inventory = FlakyInventory()
    inventory.down = True
    engine = await open_engine(tmp_path)
    first = EntryLogOutbox(engine, inventory, interval=0.05)
    entries = [entry() for _ in range(5)]
    for e in entries:
        first.submit(e)
    for e in entries:
        await first.kept(e.scan_id)
    assert not await first.drain_once()  # inventory down: nothing leaves the outbox
    assert await first.backlog() == 5 and inventory.rows == {}
    # the process stops (or is killed) with every row still waiting
    await engine.dispose()

    inventory.down = False
    engine = await open_engine(tmp_path)
    second = EntryLogOutbox(engine, inventory, interval=0.05)
    inventory.batches.clear()
    assert await second.drain_once()
    assert sorted(inventory.rows) == sorted(e.log_id for e in entries)
    assert inventory.batches == [5]  # the waiting rows in one call, not one call per row
    assert await second.backlog() == 0
    await engine.dispose()


async def test_a_row_is_written_once_however_often_it_is_drained(tmp_path: Path) -> None:
    inventory = FlakyInventory()
    engine = await open_engine(tmp_path)
    outbox = EntryLogOutbox(engine, inventory, interval=0.05)
    e = entry()
    outbox.submit(e)
    await outbox.kept(e.scan_id)
    # two replicas draining the same database at once
    other = EntryLogOutbox(engine, inventory, interval=0.05)
    assert all([await outbox.drain_once(), await other.drain_once()])
    assert list(inventory.rows) == [e.log_id]
    assert await outbox.backlog() == 0
    # the same scan decided again (its first answer lost to a crash) names the same row
    again = pb.EntryLogEntry(scan_id=e.scan_id, result="SUCCESS", mode="offline")
    outbox.submit(again)
    await outbox.kept(e.scan_id)
    assert await outbox.drain_once()
    assert list(inventory.rows) == [e.log_id] and again.log_id == e.log_id
    await engine.dispose()


async def test_rows_wait_in_memory_while_the_outbox_database_is_down(tmp_path: Path) -> None:
    inventory = FlakyInventory()
    inventory.down = True
    # a database file in a folder that does not exist: every statement fails as an outage does
    engine = await make_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'o.db'}")
    outbox = EntryLogOutbox(engine, inventory, interval=0.05)
    e = entry()
    outbox.submit(e)
    await outbox.kept(e.scan_id)
    assert not await outbox.drain_once()
    assert inventory.rows == {}
    inventory.down = False
    assert not await outbox.drain_once()  # memory went out; the table is still unreadable
    assert list(inventory.rows) == [e.log_id]
    await engine.dispose()


async def test_a_row_inventory_refuses_as_invalid_is_dropped_and_counted(tmp_path: Path) -> None:
    inventory = FlakyInventory()
    engine = await open_engine(tmp_path)
    outbox = EntryLogOutbox(engine, inventory, interval=0.05)
    bad, good = entry(), entry()
    inventory.refuse.add(bad.scan_id)
    for e in (bad, good):
        outbox.submit(e)
        await outbox.kept(e.scan_id)
    assert await outbox.drain_once()
    assert list(inventory.rows) == [good.log_id]
    assert outbox.dropped == 1 and await outbox.backlog() == 0
    await engine.dispose()


@pytest.mark.parametrize("count", [1, 250])
async def test_the_background_drain_empties_the_outbox(tmp_path: Path, count: int) -> None:
    inventory = FlakyInventory()
    engine = await open_engine(tmp_path)
    outbox = EntryLogOutbox(engine, inventory, interval=0.05)
    outbox.start()
    entries = [entry() for _ in range(count)]
    for e in entries:
        outbox.submit(e)
    await outbox.close()
    assert len(inventory.rows) == count
    assert await outbox.backlog() == 0
    await engine.dispose()


class SlowInventory(FlakyInventory):
    """Holds every write until `release` is set: a drain round is in progress meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def write_entry_logs(
        self, entries: list[pb.EntryLogEntry], *, timeout: float | None = None
    ) -> list[bool | RowRefused]:
        self.writing.set()
        await self.release.wait()
        return await super().write_entry_logs(entries, timeout=timeout)


async def test_close_lets_a_drain_round_in_progress_finish(tmp_path: Path) -> None:
    """Closing while the drain is mid-round does not cancel the round: cancelled inside
    `engine.connect()`, a round stranded a pooled connection (SQLAlchemy's warning that the
    garbage collector cleaned up a non-checked-in connection)."""
    inventory = SlowInventory()
    engine = await open_engine(tmp_path)
    outbox = EntryLogOutbox(engine, inventory, interval=0.05)
    outbox.start()
    entries = [entry() for _ in range(3)]
    for e in entries:
        outbox.submit(e)
    await asyncio.wait_for(inventory.writing.wait(), 5)  # the round holds the rows now
    closing = asyncio.create_task(outbox.close())
    await asyncio.sleep(0)
    inventory.release.set()
    await asyncio.wait_for(closing, 10)
    drain = outbox._task
    assert drain is not None and drain.done() and not drain.cancelled()
    assert engine.pool.checkedout() == 0
    assert sorted(inventory.rows) == sorted(e.log_id for e in entries)
    assert await outbox.backlog() == 0
    await engine.dispose()


def admission(seat_id: str) -> pb.EntryLogEntry:
    return pb.EntryLogEntry(
        scan_id=str(uuid.uuid4()), seat_id=seat_id, result="SUCCESS", mode="online"
    )


async def test_a_provisional_row_waits_for_the_scans_final_row(tmp_path: Path) -> None:
    inventory = FlakyInventory()
    engine = await open_engine(tmp_path)
    outbox = EntryLogOutbox(engine, inventory, interval=0.05)
    seat = str(uuid.uuid4())
    kept = admission(seat)
    await outbox.provisional(kept)
    assert await outbox.drain_once() and inventory.rows == {}  # not before its grace
    # the admission lost the race: the final row (DUPLICATE) replaces the provisional one
    final = pb.EntryLogEntry(scan_id=kept.scan_id, seat_id=seat, result="DUPLICATE", mode="online")
    outbox.submit(final)
    await outbox.kept(final.scan_id)
    assert await outbox.drain_once()
    assert [r.result for r in inventory.rows.values()] == ["DUPLICATE"]
    assert await outbox.backlog() == 0
    await engine.dispose()


async def test_a_provisional_row_left_by_a_crash_is_written_only_if_the_admission_happened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("central.orchestrator.entry_log.PROVISIONAL_GRACE_S", 0.0)
    inventory = FlakyInventory()
    engine = await open_engine(tmp_path)
    outbox = EntryLogOutbox(engine, inventory, interval=0.05)
    admitted, refused = admission(str(uuid.uuid4())), admission(str(uuid.uuid4()))
    inventory.seats[admitted.seat_id] = pb.Seat(
        seat_id=admitted.seat_id, status="CHECKED_IN", checked_in_scan_id=admitted.scan_id
    )
    inventory.seats[refused.seat_id] = pb.Seat(seat_id=refused.seat_id, status="SOLD")
    for e in (admitted, refused):
        await outbox.provisional(e)
    # the process dies here: no final rows. Inventory is down at first: both wait.
    inventory.down = True
    assert not await outbox.drain_once()
    assert await outbox.backlog() == 2
    inventory.down = False
    assert await outbox.drain_once()
    assert [(r.scan_id, r.result) for r in inventory.rows.values()] == [
        (admitted.scan_id, "SUCCESS")
    ]
    assert await outbox.backlog() == 0
    await engine.dispose()
