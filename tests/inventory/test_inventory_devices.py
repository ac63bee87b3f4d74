"""BindDevice and the device serial in MarkCheckedIn: a TR2 code admits only while its device is
the seat's current one, and only the seat's current owner at its current epoch can bind."""

from __future__ import annotations

import asyncio

import grpc

from central.inventory.errors import detail_code
from proto import inventory_pb2 as pb
from tests.inventory.support import Inventory, new_id


def bind(seat_id: str, owner: str, epoch: int) -> pb.BindDeviceRequest:
    return pb.BindDeviceRequest(seat_id=seat_id, owner_user_id=owner, owner_epoch=epoch)


def check_in(seat_id: str, epoch: int, serial: int) -> pb.MarkCheckedInRequest:
    return pb.MarkCheckedInRequest(
        seat_id=seat_id, owner_epoch=epoch, gate_id=new_id(), scan_id=new_id(), device_serial=serial
    )


async def test_bind_bumps_the_serial_and_the_manifest_cursor(inv: Inventory) -> None:
    seat_id, owner = await inv.sold_seat()
    before = await inv.seat(seat_id)
    assert before.device_serial == 0
    bound = await inv.call("BindDevice", bind(seat_id, owner, before.owner_epoch))
    assert bound.device_serial == 1
    assert bound.updated_seq > before.updated_seq  # gates pick the change up in their manifest
    again = await inv.call("BindDevice", bind(seat_id, owner, before.owner_epoch))
    assert again.device_serial == 2


async def test_bind_by_someone_else_or_at_an_old_epoch_changes_nothing(inv: Inventory) -> None:
    seat_id, owner = await inv.sold_seat()
    seat = await inv.seat(seat_id)
    for request in (
        bind(seat_id, new_id(), seat.owner_epoch),
        bind(seat_id, owner, seat.owner_epoch + 1),
    ):
        err = await inv.error("BindDevice", request)
        assert err.code() == grpc.StatusCode.ABORTED
    assert await inv.seat(seat_id) == seat


async def test_check_in_with_a_replaced_device_is_refused(inv: Inventory) -> None:
    seat_id, owner = await inv.sold_seat()
    epoch = (await inv.seat(seat_id)).owner_epoch
    await inv.call("BindDevice", bind(seat_id, owner, epoch))
    await inv.call("BindDevice", bind(seat_id, owner, epoch))
    err = await inv.error("MarkCheckedIn", check_in(seat_id, epoch, 1))
    assert err.code() == grpc.StatusCode.ABORTED
    assert detail_code(err.details()) == "DEVICE_REPLACED"
    assert (await inv.seat(seat_id)).status == "SOLD"
    won = await inv.call("MarkCheckedIn", check_in(seat_id, epoch, 2))
    assert won.status == "CHECKED_IN"


async def test_a_bind_racing_a_check_in_leaves_one_consistent_outcome(inv: Inventory) -> None:
    """Released at once: either the check-in won with the old device (then the seat is CHECKED_IN
    and the bind is refused as not SOLD), or the bind won (then the old device's check-in fails)."""
    for _ in range(10):
        seat_id, owner = await inv.sold_seat()
        epoch = (await inv.seat(seat_id)).owner_epoch
        await inv.call("BindDevice", bind(seat_id, owner, epoch))
        results = await asyncio.gather(
            inv.call("MarkCheckedIn", check_in(seat_id, epoch, 1)),
            inv.call("BindDevice", bind(seat_id, owner, epoch)),
            return_exceptions=True,
        )
        final = await inv.seat(seat_id)
        checked_in, rebound = (not isinstance(r, BaseException) for r in results)
        assert checked_in != rebound, results
        if checked_in:
            assert (final.status, final.device_serial) == ("CHECKED_IN", 1)
        else:
            assert (final.status, final.device_serial) == ("SOLD", 2)
