"""Ownership compare-and-set and check-in: one winner, stale tickets refused, nothing half-done."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest

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


def with_row(request: pb.MarkCheckedInRequest) -> pb.MarkCheckedInRequest:
    """The verifier's admission: the entry-log row travels with the check-in."""
    request.entry_log.CopyFrom(
        pb.EntryLogEntry(
            log_id=new_id(),
            seat_id=request.seat_id,
            gate_id=request.gate_id,
            scan_id=request.scan_id,
            result="SUCCESS",
            mode="online",
        )
    )
    return request


async def test_a_refused_admission_is_judged_without_reading_the_seat_again(
    inv: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the admission statement answers a refusal with the seat as it stands, so a
    duplicate, a stale epoch, an unsold seat or another event's seat costs one statement, not
    two (SQLite reads the seat after: a statement on the loop's own connection). Each refusal
    says why, with the seat in the trailer, and writes nothing."""
    store = inv.server.store
    assert store is not None
    reads: list[str] = []
    real_require_seat = store.require_seat

    async def counted(seat_id: str) -> Any:
        reads.append(seat_id)
        return await real_require_seat(seat_id)

    monkeypatch.setattr(store, "require_seat", counted)
    seat_id, _ = await inv.sold_seat()
    gate, first_scan = new_id(), new_id()
    await inv.call("MarkCheckedIn", with_row(check_in(seat_id, 1, gate, first_scan)))
    _, (unsold,) = await inv.seats(1)
    other_event = with_row(check_in(seat_id, 1, gate, new_id()))
    other_event.event_id = new_id()
    refusals = [
        (with_row(check_in(seat_id, 1, gate, new_id())), "ALREADY_CHECKED_IN", "CHECKED_IN"),
        (other_event, "OTHER_EVENT", "CHECKED_IN"),
        (with_row(check_in(unsold, 1, gate, new_id())), "SEAT_NOT_SOLD", "AVAILABLE"),
    ]
    fresh, _ = await inv.sold_seat()
    refusals.append((with_row(check_in(fresh, 2, gate, new_id())), "STALE_EPOCH", "SOLD"))
    reads.clear()
    for request, code, status in refusals:
        err = await inv.error("MarkCheckedIn", request)
        assert detail_code(err.details()) == code, err.details()
        trailer_seat = seat_from_trailers(err.trailing_metadata())
        assert trailer_seat is not None
        assert (trailer_seat.seat_id, trailer_seat.status) == (request.seat_id, status)
        listed = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(scan_id=request.scan_id))
        assert list(listed.entries) == []
    # the same scan again is its own admission standing, not a refusal
    again = await inv.call("MarkCheckedIn", with_row(check_in(seat_id, 1, gate, first_scan)))
    assert (again.status, again.checked_in_scan_id) == ("CHECKED_IN", first_scan)
    expected_reads = 0 if store._dialect == "postgresql" else len(refusals) + 1
    assert len(reads) == expected_reads, reads


async def test_50_concurrent_admissions_with_their_rows_one_wins_one_row(inv: Inventory) -> None:
    """The one-statement admission under a burst: one winner and its one entry-log row; every
    loser is told ALREADY_CHECKED_IN with the winner's check-in in the trailer, including those
    whose statement began before the winner committed (their snapshot still had the seat SOLD:
    they look again)."""
    seat_id, _ = await inv.sold_seat()
    requests = [with_row(check_in(seat_id, 1, new_id(), new_id())) for _ in range(50)]
    results = await asyncio.gather(
        *(inv.call("MarkCheckedIn", r) for r in requests), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, pb.Seat)]
    assert len(won) == 1
    winner = won[0].checked_in_scan_id
    for result in results:
        if isinstance(result, pb.Seat):
            continue
        assert isinstance(result, grpc.aio.AioRpcError), result
        assert detail_code(result.details()) == "ALREADY_CHECKED_IN", result.details()
        trailer_seat = seat_from_trailers(result.trailing_metadata())
        assert trailer_seat is not None and trailer_seat.checked_in_scan_id == winner
    rows = [
        e
        for r in requests
        for e in (
            await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(scan_id=r.scan_id))
        ).entries
    ]
    assert [e.scan_id for e in rows] == [winner]
