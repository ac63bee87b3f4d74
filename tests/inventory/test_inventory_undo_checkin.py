"""The admission's entry-log row in MarkCheckedIn's own write, and UndoCheckIn: a check-in undone
only when the seat is still CHECKED_IN by exactly the named scan, its row rewritten with it."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from central.inventory.errors import detail_code
from proto import inventory_pb2 as pb
from tests.inventory.support import Inventory, new_id


def admission(seat_id: str, scan: str, gate: str, *, with_row: bool = True) -> Any:
    request = pb.MarkCheckedInRequest(seat_id=seat_id, owner_epoch=1, gate_id=gate, scan_id=scan)
    if with_row:
        request.entry_log.CopyFrom(
            pb.EntryLogEntry(
                log_id=new_id(),
                seat_id=seat_id,
                gate_id=gate,
                scan_id=scan,
                result="SUCCESS",
                mode="online",
                scanned_at_ms=1,
                detail="welcome",
            )
        )
    return request


def undo(seat_id: str, scan: str, result: str = "UNPAID") -> pb.UndoCheckInRequest:
    return pb.UndoCheckInRequest(
        seat_id=seat_id, scan_id=scan, result=result, detail="gate said no"
    )


async def rows_of(inv: Inventory, scan: str) -> list[tuple[str, str]]:
    reply = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(scan_id=scan))
    return [(e.result, e.mode) for e in reply.entries]


async def test_the_winning_check_in_writes_its_row_and_losers_write_none(inv: Inventory) -> None:
    seat_id, _ = await inv.sold_seat()
    scans = [new_id() for _ in range(20)]
    results = await asyncio.gather(
        *(inv.call("MarkCheckedIn", admission(seat_id, s, new_id())) for s in scans),
        return_exceptions=True,
    )
    winners = [s for s, r in zip(scans, results, strict=True) if isinstance(r, pb.Seat)]
    assert len(winners) == 1
    for scan in scans:
        assert await rows_of(inv, scan) == ([("SUCCESS", "online")] if scan in winners else [])
    # a repeat of the won check-in writes no second row
    await inv.call("MarkCheckedIn", admission(seat_id, winners[0], new_id()))
    assert await rows_of(inv, winners[0]) == [("SUCCESS", "online")]


async def test_a_row_naming_another_scan_is_refused(inv: Inventory) -> None:
    seat_id, _ = await inv.sold_seat()
    request = admission(seat_id, new_id(), new_id())
    request.entry_log.scan_id = new_id()
    err = await inv.error("MarkCheckedIn", request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "entry_log" in (err.details() or "")
    assert (await inv.seat(seat_id)).status == "SOLD"


async def test_undo_resets_only_the_named_scans_check_in(inv: Inventory) -> None:
    seat_id, _ = await inv.sold_seat()
    scan = new_id()
    admitted = await inv.call("MarkCheckedIn", admission(seat_id, scan, new_id()))
    # another scan's id changes nothing
    other = await inv.call("UndoCheckIn", undo(seat_id, new_id()))
    assert (other.undone, other.seat.status) == (False, "CHECKED_IN")
    done = await inv.call("UndoCheckIn", undo(seat_id, scan))
    assert done.undone
    assert (done.seat.status, done.seat.checked_in_scan_id, done.seat.checked_in_at_ms) == (
        "SOLD",
        "",
        0,
    )
    assert done.seat.updated_seq > admitted.updated_seq  # gates' manifests see it sold again
    assert await rows_of(inv, scan) == [("UNPAID", "offline")]
    # a repeat is a no-op; a new admission by another scan stands and is never undone by the old id
    assert not (await inv.call("UndoCheckIn", undo(seat_id, scan))).undone
    later = new_id()
    await inv.call("MarkCheckedIn", admission(seat_id, later, new_id()))
    assert not (await inv.call("UndoCheckIn", undo(seat_id, scan))).undone
    assert (await inv.seat(seat_id)).checked_in_scan_id == later
    assert await rows_of(inv, later) == [("SUCCESS", "online")]


async def test_undo_racing_a_burst_of_check_ins_leaves_one_consistent_state(
    inv: Inventory,
) -> None:
    seat_id, _ = await inv.sold_seat()
    first = new_id()
    await inv.call("MarkCheckedIn", admission(seat_id, first, new_id()))
    others = [new_id() for _ in range(10)]
    calls = [inv.call("UndoCheckIn", undo(seat_id, first))] + [
        inv.call("MarkCheckedIn", admission(seat_id, s, new_id())) for s in others
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0].undone
    won = [s for s, r in zip(others, results[1:], strict=True) if isinstance(r, pb.Seat)]
    assert len(won) <= 1  # after the undo at most one other scan admits
    for r in results[1:]:
        if not isinstance(r, pb.Seat):
            assert detail_code(r.details()) == "ALREADY_CHECKED_IN"
    seat = await inv.seat(seat_id)
    assert seat.status == ("CHECKED_IN" if won else "SOLD")
    assert seat.checked_in_scan_id == (won[0] if won else "")
    successes = [s for s in [first, *others] if ("SUCCESS", "online") in await rows_of(inv, s)]
    assert successes == won  # one SUCCESS row per admission that stands


async def test_undo_of_a_missing_seat_or_bad_ids(inv: Inventory) -> None:
    err = await inv.error("UndoCheckIn", undo(new_id(), new_id()))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await inv.error("UndoCheckIn", undo("not-a-uuid", new_id()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    seat_id, _ = await inv.sold_seat()
    err = await inv.error("UndoCheckIn", undo(seat_id, new_id(), result=""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
