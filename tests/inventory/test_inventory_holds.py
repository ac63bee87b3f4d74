"""Reserve, confirm and release: each decided by one conditional update."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio

from central.inventory.errors import detail_code
from proto import inventory_pb2 as pb
from tests.inventory.support import Inventory, new_id


def reserve(seat_id: str, user_id: str, hold_id: str, ttl: int = 60) -> pb.ReserveSeatRequest:
    return pb.ReserveSeatRequest(seat_id=seat_id, user_id=user_id, hold_id=hold_id, ttl_seconds=ttl)


def confirm(seat_id: str, user_id: str, hold_id: str) -> pb.ConfirmSeatRequest:
    return pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user_id, hold_id=hold_id)


async def test_reserve_then_confirm_sells_and_both_are_idempotent(inv: Inventory) -> None:
    _, (seat_id,) = await inv.seats(1)
    user, hold = new_id(), new_id()
    held = await inv.call("ReserveSeat", reserve(seat_id, user, hold, ttl=120))
    assert (held.status, held.hold_id, held.held_by_user_id) == ("HELD", hold, user)
    assert inv.clock is not None
    assert held.held_until_ms == inv.clock.now + 120_000

    again = await inv.call("ReserveSeat", reserve(seat_id, user, hold, ttl=120))
    assert again.updated_seq == held.updated_seq  # the retry changed nothing

    sold = await inv.call("ConfirmSeat", confirm(seat_id, user, hold))
    assert (sold.status, sold.owner_user_id, sold.owner_epoch) == ("SOLD", user, 1)
    assert sold.hold_id == "" and sold.held_until_ms == 0

    repeat = await inv.call("ConfirmSeat", confirm(seat_id, user, hold))
    assert (repeat.owner_epoch, repeat.updated_seq) == (1, sold.updated_seq)

    err = await inv.error("ReserveSeat", reserve(seat_id, new_id(), new_id()))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert detail_code(err.details()) == "SEAT_ALREADY_SOLD"


async def test_200_concurrent_reserves_exactly_one_wins(inv: Inventory) -> None:
    _, (seat_id,) = await inv.seats(1)
    attempts = [(new_id(), new_id()) for _ in range(200)]
    results = await asyncio.gather(
        *(inv.call("ReserveSeat", reserve(seat_id, u, h)) for u, h in attempts),
        return_exceptions=True,
    )
    winners = [(r, a) for r, a in zip(results, attempts, strict=True) if isinstance(r, pb.Seat)]
    losers = [r for r in results if not isinstance(r, pb.Seat)]
    assert len(winners) == 1
    assert all(isinstance(e, grpc.aio.AioRpcError) for e in losers)
    assert {e.code() for e in losers} == {grpc.StatusCode.FAILED_PRECONDITION}  # type: ignore[union-attr]
    assert {detail_code(e.details()) for e in losers} == {"SEAT_UNAVAILABLE"}  # type: ignore[union-attr]
    (won, (user, hold)) = winners[0]
    seat = await inv.seat(seat_id)
    assert (seat.status, seat.hold_id, seat.held_by_user_id) == ("HELD", hold, user)


async def test_confirm_after_held_until_fails_with_hold_expired(inv: Inventory) -> None:
    assert inv.clock is not None
    _, (seat_id,) = await inv.seats(1)
    user, hold = new_id(), new_id()
    await inv.call("ReserveSeat", reserve(seat_id, user, hold, ttl=1))
    inv.clock.advance(1.001)

    err = await inv.error("ConfirmSeat", confirm(seat_id, user, hold))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert detail_code(err.details()) == "HOLD_EXPIRED"
    assert (await inv.seat(seat_id)).status == "HELD"  # nothing sold

    # Still HOLD_EXPIRED (not a vague "not held") once the sweeper has freed the seat.
    assert inv.server.store is not None
    assert await inv.server.store.release_expired() == [(seat_id, hold)]
    err = await inv.error("ConfirmSeat", confirm(seat_id, user, hold))
    assert detail_code(err.details()) == "HOLD_EXPIRED"
    seat = await inv.seat(seat_id)
    assert (seat.status, seat.owner_user_id, seat.owner_epoch) == ("AVAILABLE", "", 0)


async def test_confirm_by_another_user_or_hold_is_refused(inv: Inventory) -> None:
    _, (seat_id,) = await inv.seats(1)
    user, hold = new_id(), new_id()
    await inv.call("ReserveSeat", reserve(seat_id, user, hold))
    for req in (confirm(seat_id, new_id(), hold), confirm(seat_id, user, new_id())):
        err = await inv.error("ConfirmSeat", req)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert detail_code(err.details()) == "SEAT_NOT_HELD"
    assert (await inv.seat(seat_id)).status == "HELD"


async def test_release_with_old_hold_is_a_noop_and_keeps_the_newer_hold(inv: Inventory) -> None:
    assert inv.clock is not None
    _, (seat_id,) = await inv.seats(1)
    old_user, old_hold = new_id(), new_id()
    await inv.call("ReserveSeat", reserve(seat_id, old_user, old_hold, ttl=1))
    inv.clock.advance(2)
    # A lapsed hold does not block the next buyer, even before the sweeper ran.
    new_user, new_hold = new_id(), new_id()
    newer = await inv.call("ReserveSeat", reserve(seat_id, new_user, new_hold))
    assert newer.hold_id == new_hold

    resp = await inv.call("ReleaseSeat", pb.ReleaseSeatRequest(seat_id=seat_id, hold_id=old_hold))
    assert resp.released is False
    assert (resp.seat.status, resp.seat.hold_id) == ("HELD", new_hold)
    assert resp.seat.updated_seq == newer.updated_seq

    # The old hold cannot be confirmed either; the new one can.
    err = await inv.error("ConfirmSeat", confirm(seat_id, old_user, old_hold))
    assert detail_code(err.details()) == "HOLD_EXPIRED"
    sold = await inv.call("ConfirmSeat", confirm(seat_id, new_user, new_hold))
    assert sold.owner_user_id == new_user


async def test_release_frees_the_seat_once(inv: Inventory) -> None:
    _, (seat_id,) = await inv.seats(1)
    user, hold = new_id(), new_id()
    await inv.call("ReserveSeat", reserve(seat_id, user, hold))
    first = await inv.call("ReleaseSeat", pb.ReleaseSeatRequest(seat_id=seat_id, hold_id=hold))
    assert first.released is True and first.seat.status == "AVAILABLE"
    second = await inv.call("ReleaseSeat", pb.ReleaseSeatRequest(seat_id=seat_id, hold_id=hold))
    assert second.released is False and second.seat.updated_seq == first.seat.updated_seq
    err = await inv.error("ConfirmSeat", confirm(seat_id, user, hold))
    assert detail_code(err.details()) == "SEAT_NOT_HELD"


async def test_unknown_seat_is_not_found(inv: Inventory) -> None:
    missing = new_id()
    for method, req in (
        ("ReserveSeat", reserve(missing, new_id(), new_id())),
        ("ConfirmSeat", confirm(missing, new_id(), new_id())),
        ("ReleaseSeat", pb.ReleaseSeatRequest(seat_id=missing, hold_id=new_id())),
        ("VerifyTicket", pb.VerifyTicketRequest(seat_id=missing)),
    ):
        err = await inv.error(method, req)
        assert err.code() == grpc.StatusCode.NOT_FOUND, method
        assert detail_code(err.details()) == "SEAT_NOT_FOUND"
