"""One user can hold at most `max_active_holds` seats at once. The count of the user's live holds
and the reserve are one atomic step: a burst of parallel reserves by one user, released at once,
ends with exactly the limit held."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio

from central.inventory.errors import detail_code
from proto import inventory_pb2 as pb
from tests.inventory.support import Inventory, new_id

LIMIT = 4


def reserve(seat_id: str, user_id: str, ttl: int = 60) -> pb.ReserveSeatRequest:
    return pb.ReserveSeatRequest(
        seat_id=seat_id, user_id=user_id, hold_id=new_id(), ttl_seconds=ttl, max_active_holds=LIMIT
    )


async def test_a_burst_of_reserves_by_one_user_holds_exactly_the_limit(inv: Inventory) -> None:
    _, seat_ids = await inv.seats(30)
    user = new_id()
    go = asyncio.Event()

    async def one(seat_id: str) -> str:
        await go.wait()
        try:
            await inv.call("ReserveSeat", reserve(seat_id, user))
            return "HELD"
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
            return detail_code(err.details())

    tasks = [asyncio.create_task(one(s)) for s in seat_ids]
    await asyncio.sleep(0.05)
    go.set()
    outcomes = await asyncio.gather(*tasks)
    assert outcomes.count("HELD") == LIMIT, outcomes
    assert set(outcomes) == {"HELD", "HOLD_LIMIT_REACHED"}
    held = [s for s in seat_ids if (await inv.seat(s)).held_by_user_id == user]
    assert len(held) == LIMIT
    # Another user is not limited by the first one's holds.
    free = next(s for s in seat_ids if s not in held)
    other = await inv.call("ReserveSeat", reserve(free, new_id()))
    assert other.status == "HELD"


async def test_lapsed_holds_do_not_count(inv: Inventory) -> None:
    assert inv.clock is not None
    _, seat_ids = await inv.seats(LIMIT + 1)
    user = new_id()
    for seat_id in seat_ids[:LIMIT]:
        await inv.call("ReserveSeat", reserve(seat_id, user, ttl=1))
    err = await inv.error("ReserveSeat", reserve(seat_ids[LIMIT], user))
    assert detail_code(err.details()) == "HOLD_LIMIT_REACHED"
    assert (await inv.seat(seat_ids[LIMIT])).status == "AVAILABLE"
    inv.clock.advance(2)
    assert (await inv.call("ReserveSeat", reserve(seat_ids[LIMIT], user))).status == "HELD"
