"""The typed service clients against the real services (in-process, real HTTP and gRPC): each
service's refusals come out of its client already mapped — a public ApiError, a typed "no such
thing" (None), or a typed refusal carrying the seat inventory attached in its trailer."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from cluster import Cluster, running_cluster
from purchase_support import make_event

from central.clients.events import EventsClient
from central.clients.inventory import CheckInRefused, InventoryClient, RowRefused, SeatMovedOn
from central.errors import ApiError
from central.orchestrator import admin_ops
from proto import inventory_pb2 as pb

RIVALS = 8
GATE = str(uuid.uuid4())


def new_id() -> str:
    return str(uuid.uuid4())


async def sold_seat(c: Cluster, seat_id: str, owner: str) -> pb.Seat:
    hold_id = str(uuid.uuid4())
    await c.backends.inventory.reserve_seat(seat_id, owner, hold_id, 60, 0)
    return await c.backends.inventory.confirm_seat(seat_id, owner, hold_id)


async def refusal(call: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_inventory_refusals_carry_the_seat_as_it_stands(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        inventory = c.backends.inventory
        event = await make_event(c, seats_per_row=3)
        first, second, free = event["seat_ids"]
        owner, other = str(uuid.uuid4()), str(uuid.uuid4())
        sold = await sold_seat(c, first, owner)

        # a burst of scans of one ticket: one admits, every loser gets the winner's check-in
        # from the trailer (the gate and time of the admission), without a second read
        scans = [str(uuid.uuid4()) for _ in range(RIVALS)]
        answers = await asyncio.gather(
            *(
                inventory.mark_checked_in(first, sold.owner_epoch, GATE, scan, 1_000 + i, 0)
                for i, scan in enumerate(scans)
            )
        )
        won = [a for a in answers if isinstance(a, pb.Seat)]
        lost = [a for a in answers if isinstance(a, CheckInRefused)]
        assert len(won) == 1 and len(lost) == RIVALS - 1
        for refused in lost:
            assert refused.outcome == "DUPLICATE" and refused.seat is not None
            assert refused.seat.checked_in_scan_id == won[0].checked_in_scan_id
            assert refused.seat.checked_in_at_ms == won[0].checked_in_at_ms
        # the same scan again is its own admission, not a duplicate
        again = await inventory.mark_checked_in(
            first, sold.owner_epoch, GATE, won[0].checked_in_scan_id, 5, 0
        )
        assert isinstance(again, pb.Seat)

        # a ticket of an older owner epoch, a seat never sold, a seat that does not exist
        await sold_seat(c, second, owner)
        moved = await inventory.update_owner(second, owner, other)
        assert isinstance(moved, pb.Seat) and moved.owner_user_id == other
        stale = await inventory.mark_checked_in(second, moved.owner_epoch - 1, GATE, new_id(), 1, 0)
        assert stale == CheckInRefused("OWNER_CHANGED", stale.seat) and stale.seat is not None
        assert stale.seat.owner_epoch == moved.owner_epoch
        unsold = await inventory.mark_checked_in(free, 1, GATE, new_id(), 1, 0)
        assert isinstance(unsold, CheckInRefused) and unsold.outcome == "NOT_SOLD"
        missing = await inventory.mark_checked_in(str(uuid.uuid4()), 1, GATE, new_id(), 1, 0)
        assert missing == CheckInRefused("NOT_FOUND", None)

        # a lost compare-and-set answers the seat as it stands: here, already the new owner's
        again_moved = await inventory.update_owner(second, owner, other)
        assert isinstance(again_moved, SeatMovedOn)
        assert again_moved.seat.owner_user_id == other
        stale_refund = await inventory.refund_seat(second, moved.owner_epoch - 1)
        assert isinstance(stale_refund, SeatMovedOn)
        assert stale_refund.seat.owner_epoch == moved.owner_epoch

        # refusals with a public answer are that answer
        assert (await refusal(inventory.reserve_seat(second, owner, new_id(), 60, 0))).code == (
            "SEAT_ALREADY_SOLD"
        )
        assert (
            await refusal(inventory.confirm_seat(free, owner, new_id()))
        ).code == "SEAT_NOT_HELD"
        nowhere = str(uuid.uuid4())
        assert (await refusal(inventory.update_owner(nowhere, owner, other))).code == (
            "SEAT_NOT_FOUND"
        )
        assert (await refusal(inventory.seat(nowhere))).code == "SEAT_NOT_FOUND"
        assert await inventory.find_seat(nowhere) is None
        # an entry-log row inventory refuses itself is a typed refusal (dropped, not retried)
        bad_row = pb.EntryLogEntry(log_id=new_id(), result="SUCCESS", mode="online", latency_ms=-1)
        refused_row = await inventory.write_entry_log(bad_row)
        assert isinstance(refused_row, RowRefused) and "latency_ms" in refused_row.why
        # many rows in one call: each answered in order, the bad one refused, the others written
        good = [pb.EntryLogEntry(log_id=new_id(), result="DUPLICATE", mode="online") for _ in "ab"]
        answers = await inventory.write_entry_logs([good[0], bad_row, good[1], good[0]])
        assert answers[0] is True and answers[2] is True
        assert isinstance(answers[1], RowRefused) and "latency_ms" in answers[1].why
        assert answers[3] is False  # the same log id again in the batch: written once
        assert await inventory.write_entry_logs(good) == [False, False]  # a retried batch


async def test_users_answers_none_where_a_caller_means_none(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        users = c.backends.users
        user = await admin_ops.create_user(c.backends, email="a@example.com", password="x" * 10)
        user_id = user["user_id"]
        await users.grant(user_id, 100, "grant-1")
        order_id = str(uuid.uuid4())

        assert await users.entry("never-written") is None
        debit = await users.debit(user_id, 30, "buy-1", order_id)
        assert (debit["amount"], debit["credit_balance"], debit["replayed"]) == (-30, 70, False)
        replay = await users.debit(user_id, 30, "buy-1", order_id)
        assert (replay["entry_id"], replay["replayed"]) == (debit["entry_id"], True)
        assert await users.entry("buy-1") == {**debit, "replayed": False}
        broke = await refusal(users.debit(user_id, 1_000, "buy-2", order_id))
        assert (broke.code, broke.status) == ("INSUFFICIENT_CREDITS", 402)
        assert await users.balance(user_id) == 70

        assert await users.otp_status(user_id, "purchase", order_id) is None
        await users.send_otp(user_id, "purchase", order_id)
        status = await users.otp_status(user_id, "purchase", order_id)
        assert status is not None and status["verified"] is False
        wrong = await refusal(users.verify_otp(user_id, "purchase", order_id, "000000"))
        assert wrong.code in ("OTP_INVALID", "OTP_EXPIRED")
        assert (await refusal(users.user(str(uuid.uuid4())))).code == "USER_NOT_FOUND"


async def test_orders_and_events_refusals_are_the_services_codes(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        orders, events = c.backends.orders, c.backends.events
        event = await make_event(c, seats_per_row=2)
        ids = (str(uuid.uuid4()), str(uuid.uuid4()))
        order = await orders.create_order(
            ids[0], ids[1], event["seat_ids"][0], event["event_id"], 5, new_id()
        )
        assert order["status"] == "PENDING"
        assert (await orders.transition_order(ids[0], "CONFIRMED"))["status"] == "CONFIRMED"
        late = await refusal(orders.transition_order(ids[0], "FAILED", reason="late"))
        assert late.code == "ORDER_INVALID_STATE"
        assert [o["order_id"] for o in await orders.orders(seat_id=order["seat_id"])] == [ids[0]]
        assert (await orders.orders_of(ids[1], 10, 0)).total == 1
        assert (await refusal(orders.order(str(uuid.uuid4())))).code == "ORDER_NOT_FOUND"
        assert (await refusal(orders.transfer(str(uuid.uuid4())))).code == "TRANSFER_NOT_FOUND"

        page = await events.events_page(1, 10)
        assert [e["event_id"] for e in page.items] == [event["event_id"]] and page.total == 1
        assert (await refusal(events.event(str(uuid.uuid4())))).code == "EVENT_NOT_FOUND"
        gate = await events.create_gate("HALL-A", "Door 1")
        assert (await events.authenticate_gate(gate["device_token"]))["gate_id"] == gate["gate_id"]
        await events.set_gate_enabled(gate["gate_id"], False)
        revoked = await refusal(events.authenticate_gate(gate["device_token"]))
        assert revoked.code == "GATE_REVOKED"


async def test_an_unreachable_service_is_service_unavailable() -> None:
    # a port nobody listens on: both transports answer the one public "try again" code
    events = EventsClient("events", "http://127.0.0.1:9", "token", timeout=2)
    inventory = InventoryClient("127.0.0.1:9", "token", timeout=2)
    try:
        assert (await refusal(events.event(str(uuid.uuid4())))).code == "SERVICE_UNAVAILABLE"
        assert (await refusal(inventory.find_seat(str(uuid.uuid4())))).code == (
            "SERVICE_UNAVAILABLE"
        )
    finally:
        await events.close()
        await inventory.close()
