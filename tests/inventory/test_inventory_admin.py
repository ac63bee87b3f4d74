"""Bulk creation, listings, counts, the gate manifest and the entry log."""

from __future__ import annotations

import grpc

from central.inventory.errors import detail_code
from proto import inventory_pb2 as pb
from tests.inventory.support import Inventory, new_id


async def test_create_list_and_count_seats(inv: Inventory) -> None:
    event_id, ids = await inv.seats(4)
    listed = await inv.call("ListSeats", pb.ListSeatsRequest(event_id=event_id))
    assert [s.seat_id for s in listed.seats] == ids
    assert [(s.row, s.number, s.status) for s in listed.seats] == [
        ("A", n, "AVAILABLE") for n in (1, 2, 3, 4)
    ]
    user, hold = new_id(), new_id()
    await inv.call(
        "ReserveSeat",
        pb.ReserveSeatRequest(seat_id=ids[0], user_id=user, hold_id=hold, ttl_seconds=60),
    )
    held = await inv.call("ListSeats", pb.ListSeatsRequest(event_id=event_id, statuses=["HELD"]))
    assert [s.seat_id for s in held.seats] == [ids[0]]

    empty_event = new_id()
    counts = await inv.call("SeatCounts", pb.SeatCountsRequest(event_ids=[event_id, empty_event]))
    by_event = {c.event_id: dict(c.by_status) for c in counts.events}
    assert by_event[event_id] == {"AVAILABLE": 3, "HELD": 1, "SOLD": 0, "CHECKED_IN": 0}
    assert sum(by_event[empty_event].values()) == 0


async def test_creating_an_existing_seat_is_refused_and_creates_nothing(inv: Inventory) -> None:
    event_id, ids = await inv.seats(2)
    err = await inv.error(
        "CreateSeats",
        pb.CreateSeatsRequest(
            event_id=event_id,
            seats=[
                pb.NewSeat(row="B", number=1, category="X"),
                pb.NewSeat(row="A", number=2, category="X"),
            ],
        ),
    )
    assert (err.code(), detail_code(err.details())) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "SEAT_EXISTS",
    )
    listed = await inv.call("ListSeats", pb.ListSeatsRequest(event_id=event_id))
    assert [s.seat_id for s in listed.seats] == ids  # row B was not half-created


async def _pages(
    inv: Inventory, event_ids: list[str], cursor: int, limit: int
) -> tuple[list[pb.Seat], int]:
    got: list[pb.Seat] = []
    while True:
        page = await inv.call(
            "GetManifest", pb.ManifestRequest(event_ids=event_ids, cursor=cursor, limit=limit)
        )
        got.extend(page.seats)
        assert page.cursor >= cursor
        cursor = page.cursor
        if not page.more:
            return got, cursor


async def test_manifest_pagination_returns_every_change_once(inv: Inventory) -> None:
    assert inv.clock is not None and inv.server.store is not None
    event_id, ids = await inv.seats(12)
    other_event, other_ids = await inv.seats(3)
    # Ten holds lapsing together: on SQLite the one releasing statement gives them one cursor value,
    # which a page must not split.
    for seat_id in ids[:10]:
        await inv.call(
            "ReserveSeat",
            pb.ReserveSeatRequest(
                seat_id=seat_id, user_id=new_id(), hold_id=new_id(), ttl_seconds=1
            ),
        )
    inv.clock.advance(1)
    assert len(await inv.server.store.release_expired()) == 10
    user, hold = new_id(), new_id()
    await inv.call(
        "ReserveSeat",
        pb.ReserveSeatRequest(seat_id=ids[11], user_id=user, hold_id=hold, ttl_seconds=60),
    )

    seen, cursor = await _pages(inv, [event_id], 0, limit=3)
    assert sorted(s.seat_id for s in seen) == sorted(ids)  # each seat once, latest state
    seqs = [s.updated_seq for s in seen]
    assert seqs == sorted(seqs)
    assert {s.seat_id: s.status for s in seen}[ids[11]] == "HELD"
    assert cursor == max(seqs)

    # Nothing new: an empty page, same cursor.
    page = await inv.call("GetManifest", pb.ManifestRequest(event_ids=[event_id], cursor=cursor))
    assert (list(page.seats), page.cursor, page.more) == ([], cursor, False)

    # Later changes come back exactly once from the saved cursor; other events stay out.
    await inv.call(
        "ConfirmSeat", pb.ConfirmSeatRequest(seat_id=ids[11], user_id=user, hold_id=hold)
    )
    await inv.call(
        "ReserveSeat",
        pb.ReserveSeatRequest(
            seat_id=other_ids[0], user_id=new_id(), hold_id=new_id(), ttl_seconds=60
        ),
    )
    await inv.call(
        "ReserveSeat",
        pb.ReserveSeatRequest(seat_id=ids[0], user_id=new_id(), hold_id=new_id(), ttl_seconds=60),
    )
    later, _ = await _pages(inv, [event_id], cursor, limit=1)
    assert [(s.seat_id, s.status) for s in later] == [(ids[11], "SOLD"), (ids[0], "HELD")]

    both, _ = await _pages(inv, [event_id, other_event], 0, limit=5)
    assert sorted(s.seat_id for s in both) == sorted(ids + other_ids)


async def test_entry_log_written_once_and_listed_newest_first(inv: Inventory) -> None:
    assert inv.clock is not None
    event_id, gate = new_id(), new_id()
    first_scan, second_scan = new_id(), new_id()
    first = pb.EntryLogEntry(
        log_id=new_id(),
        seat_id=new_id(),
        event_id=event_id,
        gate_id=gate,
        scan_id=first_scan,
        result="ADMITTED",
        hall_presented="HALL-A",
        hall_expected="HALL-A",
        mode="online",
        scanned_at_ms=inv.clock.now - 5000,
        latency_ms=12.5,
    )
    # A scan that named no seat we know is logged too.
    second = pb.EntryLogEntry(
        event_id=event_id,
        gate_id=gate,
        scan_id=second_scan,
        result="NOT_FOUND",
        mode="offline",
        detail="token names no seat",
    )
    assert (await inv.call("WriteEntryLog", first)).written is True
    assert (await inv.call("WriteEntryLog", second)).written is True
    assert (await inv.call("WriteEntryLog", first)).written is False  # retried upload

    listed = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(event_id=event_id))
    assert [e.scan_id for e in listed.entries] == [second_scan, first_scan]
    assert listed.entries[0].seat_id == "" and listed.entries[0].scanned_at_ms == inv.clock.now
    assert listed.entries[1] == first

    by_scan = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(scan_id=first_scan))
    assert [e.log_id for e in by_scan.entries] == [first.log_id]
    limited = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(event_id=event_id, limit=1))
    assert len(limited.entries) == 1


async def test_entry_logs_in_one_call_each_row_answered_in_order(inv: Inventory) -> None:
    event_id = new_id()

    def row(result: str, mode: str = "online") -> pb.EntryLogEntry:
        return pb.EntryLogEntry(
            log_id=new_id(), event_id=event_id, scan_id=new_id(), result=result, mode=mode
        )

    rows = [row("DUPLICATE"), row("INVALID", mode="nowhere"), row("WRONG_HALL")]
    reply = await inv.call("WriteEntryLogs", pb.EntryLogBatch(entries=rows))
    assert [(o.written, o.refused.split(":")[0]) for o in reply.outcomes] == [
        (True, ""),
        (False, "VALIDATION_ERROR"),
        (True, ""),
    ]
    listed = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(event_id=event_id))
    assert sorted(e.log_id for e in listed.entries) == sorted([rows[0].log_id, rows[2].log_id])
    again = await inv.call("WriteEntryLogs", pb.EntryLogBatch(entries=[rows[0], rows[2]]))
    assert [o.written for o in again.outcomes] == [False, False]  # a retried batch writes nothing
    empty = await inv.call("WriteEntryLogs", pb.EntryLogBatch())
    assert list(empty.outcomes) == []
    too_many = pb.EntryLogBatch(entries=[row("DUPLICATE") for _ in range(1001)])
    assert (await inv.error("WriteEntryLogs", too_many)).code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(event_id=event_id))
    assert len(listed.entries) == 2  # the refused call wrote nothing
