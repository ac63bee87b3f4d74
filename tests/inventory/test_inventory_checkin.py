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
