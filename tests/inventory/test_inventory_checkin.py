"""Ownership compare-and-set and check-in: one winner, stale tickets refused, nothing half-done."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio

from central.inventory.errors import detail_code, seat_from_trailers
from proto import inventory_pb2 as pb
from tests.inventory.support import Inventory, new_id


def owner(seat_id: str, expected: str, new: str) -> pb.UpdateOwnerRequest:
    return pb.UpdateOwnerRequest(
        seat_id=seat_id, expected_owner_user_id=expected, new_owner_user_id=new
    )


def check_in(
    seat_id: str, epoch: int, gate: str, scan: str, at: int = 0
) -> pb.MarkCheckedInRequest:
    return pb.MarkCheckedInRequest(
        seat_id=seat_id, owner_epoch=epoch, gate_id=gate, scan_id=scan, checked_in_at_ms=at
    )


async def test_update_owner_moves_the_seat_and_bumps_the_epoch(inv: Inventory) -> None:
    seat_id, seller = await inv.sold_seat()
    buyer = new_id()
    moved = await inv.call("UpdateOwner", owner(seat_id, seller, buyer))
    assert (moved.owner_user_id, moved.owner_epoch) == (buyer, 2)
    listed = await inv.call("ListSeats", pb.ListSeatsRequest(owner_user_id=buyer))
    assert [s.seat_id for s in listed.seats] == [seat_id]
    assert (await inv.call("ListSeats", pb.ListSeatsRequest(owner_user_id=seller))).seats == []


async def test_update_owner_with_stale_expected_owner_changes_nothing(inv: Inventory) -> None:
    seat_id, seller = await inv.sold_seat()
    before = await inv.seat(seat_id)
    err = await inv.error("UpdateOwner", owner(seat_id, new_id(), new_id()))
    assert err.code() == grpc.StatusCode.ABORTED
    assert detail_code(err.details()) == "NOT_SEAT_OWNER"
    after = await inv.seat(seat_id)
    assert after == before  # owner, epoch and manifest cursor untouched
    trailer_seat = seat_from_trailers(err.trailing_metadata())
    assert trailer_seat is not None and trailer_seat.owner_user_id == seller


async def test_update_owner_refuses_unsold_checked_in_and_missing_seats(inv: Inventory) -> None:
    _, (free_seat,) = await inv.seats(1)
    err = await inv.error("UpdateOwner", owner(free_seat, new_id(), new_id()))
    assert (err.code(), detail_code(err.details())) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SEAT_NOT_SOLD",
    )
    seat_id, seller = await inv.sold_seat()
    await inv.call("MarkCheckedIn", check_in(seat_id, 1, new_id(), new_id()))
    err = await inv.error("UpdateOwner", owner(seat_id, seller, new_id()))
    assert (err.code(), detail_code(err.details())) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SEAT_CHECKED_IN",
    )
    assert (await inv.seat(seat_id)).owner_user_id == seller
    err = await inv.error("UpdateOwner", owner(new_id(), new_id(), new_id()))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_50_concurrent_check_ins_exactly_one_wins(inv: Inventory) -> None:
    seat_id, _ = await inv.sold_seat()
    attempts = [(new_id(), new_id()) for _ in range(50)]  # (gate, scan)
    results = await asyncio.gather(
        *(inv.call("MarkCheckedIn", check_in(seat_id, 1, g, s)) for g, s in attempts),
        return_exceptions=True,
    )
    winners = [(r, a) for r, a in zip(results, attempts, strict=True) if isinstance(r, pb.Seat)]
    assert len(winners) == 1
    won, (gate, scan) = winners[0]
    assert (won.status, won.checked_in_gate_id, won.checked_in_scan_id) == (
        "CHECKED_IN",
        gate,
        scan,
    )
    losers = [r for r in results if not isinstance(r, pb.Seat)]
    assert len(losers) == 49
    for err in losers:
        assert isinstance(err, grpc.aio.AioRpcError)
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
        assert detail_code(err.details()) == "ALREADY_CHECKED_IN"
        assert gate in (err.details() or "")  # where the ticket was admitted
        trailer_seat = seat_from_trailers(err.trailing_metadata())
        assert trailer_seat.checked_in_scan_id == scan
        assert trailer_seat.checked_in_at_ms == won.checked_in_at_ms

    # The winning scan again (a retried request) succeeds and changes nothing.
    repeat = await inv.call("MarkCheckedIn", check_in(seat_id, 1, gate, scan))
    assert repeat.updated_seq == won.updated_seq


async def test_check_in_keeps_the_offline_scan_time(inv: Inventory) -> None:
    seat_id, _ = await inv.sold_seat()
    assert inv.clock is not None
    scanned = inv.clock.now - 90_000
    seat = await inv.call("MarkCheckedIn", check_in(seat_id, 1, new_id(), new_id(), at=scanned))
    assert seat.checked_in_at_ms == scanned


async def test_check_in_with_a_stale_epoch_is_aborted(inv: Inventory) -> None:
    seat_id, seller = await inv.sold_seat()
    await inv.call("UpdateOwner", owner(seat_id, seller, new_id()))  # epoch 1 -> 2
    err = await inv.error("MarkCheckedIn", check_in(seat_id, 1, new_id(), new_id()))
    assert (err.code(), detail_code(err.details())) == (grpc.StatusCode.ABORTED, "STALE_EPOCH")
    assert (await inv.seat(seat_id)).status == "SOLD"
    ok = await inv.call("MarkCheckedIn", check_in(seat_id, 2, new_id(), new_id()))
    assert ok.status == "CHECKED_IN"


async def test_check_in_of_an_unsold_seat_is_refused(inv: Inventory) -> None:
    _, (seat_id,) = await inv.seats(1)
    err = await inv.error("MarkCheckedIn", check_in(seat_id, 0, new_id(), new_id()))
    assert (err.code(), detail_code(err.details())) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SEAT_NOT_SOLD",
    )
    assert (await inv.seat(seat_id)).status == "AVAILABLE"


async def test_a_check_in_bound_to_an_event_admits_only_a_seat_of_that_event(
    inv: Inventory,
) -> None:
    """The verifier's one-call admission names the event open at the gate: a seat of another
    event is refused (OTHER_EVENT, the seat in the trailer) and nothing is written — no check-in,
    no entry-log row — with or without the row in the call (the driver's statement and the
    engine's); the seat's own event admits, row and all."""
    seat_id, _ = await inv.sold_seat()
    seat = await inv.seat(seat_id)
    gate = new_id()

    def bound(event_id: str, scan: str, with_row: bool) -> pb.MarkCheckedInRequest:
        request = check_in(seat_id, 1, gate, scan)
        request.event_id = event_id
        if with_row:
            request.entry_log.CopyFrom(
                pb.EntryLogEntry(
                    log_id=new_id(),
                    seat_id=seat_id,
                    event_id=event_id,
                    gate_id=gate,
                    scan_id=scan,
                    result="SUCCESS",
                    mode="online",
                )
            )
        return request

    async def rows_of(scan: str) -> list[str]:
        listed = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(scan_id=scan))
        return [e.result for e in listed.entries]

    for with_row in (False, True):
        scan = new_id()
        err = await inv.error("MarkCheckedIn", bound(new_id(), scan, with_row))
        assert (err.code(), detail_code(err.details())) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "OTHER_EVENT",
        )
        trailer_seat = seat_from_trailers(err.trailing_metadata())
        assert (trailer_seat.event_id, trailer_seat.status) == (seat.event_id, "SOLD")
        assert await inv.seat(seat_id) == seat  # not even the manifest cursor moved
        assert await rows_of(scan) == []

    err = await inv.error("MarkCheckedIn", bound("not-a-uuid", new_id(), True))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    scan = new_id()
    admitted = await inv.call("MarkCheckedIn", bound(seat.event_id, scan, True))
    assert (admitted.status, admitted.checked_in_scan_id) == ("CHECKED_IN", scan)
    assert await rows_of(scan) == ["SUCCESS"]
