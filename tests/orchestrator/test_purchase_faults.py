"""One test per purchase step: a fault injected at that step rolls the whole purchase back — the
order FAILED, the seat released, the credits where they were. A fault past the point of no return
(the seat confirmed) is finished forward by recovery instead."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import Cluster, running_cluster
from purchase_support import PRICE, balance, make_event, pay, reserve, seat_status
from saga_clock import LONG_LEASE, lapse_leases

from central import faults

RESERVE_POINTS = ["after_reserve_seat", "after_create_order", "after_publish_hold"]
PAY_POINTS = ["after_otp", "after_deduct", "after_confirm_order", "before_confirm_seat"]


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    faults.disarm()


async def orders_for_seat(c: Cluster, seat_id: str) -> list[dict]:
    return await c.backends.orders.call("GET", "/orders", params={"seat_id": seat_id})


@pytest.mark.parametrize("point", RESERVE_POINTS)
async def test_fault_during_reserve_rolls_back(tmp_path: Path, point: str) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=2 * PRICE)
        faults.arm(f"purchase.{point}")
        status, body = await reserve(c, buyer["token"], seat_id)
        assert status == 500 and body["error_code"] == "INTERNAL_ERROR", body
        faults.disarm()
        assert (await seat_status(c, seat_id)).status == "AVAILABLE"
        assert all(o["status"] == "FAILED" for o in await orders_for_seat(c, seat_id))
        assert await balance(c, buyer["user_id"]) == 2 * PRICE
        # Nothing is stuck: the seat sells normally afterwards.
        status, body = await reserve(c, buyer["token"], seat_id)
        assert status == 200, body
        status, body = await pay(c, buyer["token"], body["data"]["order_id"])
        assert status == 200, body


@pytest.mark.parametrize("point", PAY_POINTS)
async def test_fault_during_pay_rolls_back(tmp_path: Path, point: str) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        flagged = point == "after_otp"  # the OTP step only does something for flagged users
        buyer = await c.make_user(credits=2 * PRICE, flagged=flagged)
        status, body = await reserve(c, buyer["token"], seat_id)
        order_id = body["data"]["order_id"]
        if flagged:
            status, _ = await pay(c, buyer["token"], order_id)
            assert status == 428
            code = c.otp_codes(user_id=buyer["user_id"], purpose="purchase")[-1]
            verify = {"context": "purchase", "reference_id": order_id, "otp_code": code}
            status, _ = await c.call(
                "POST", "/api/verify-otp", json_body=verify, token=buyer["token"]
            )
            assert status == 200
        faults.arm(f"purchase.{point}")
        status, body = await pay(c, buyer["token"], order_id)
        assert status == 500 and body["error_code"] == "INTERNAL_ERROR", body
        faults.disarm()
        order = await c.backends.orders.call("GET", f"/orders/{order_id}")
        assert order["status"] == "FAILED"
        assert (await seat_status(c, seat_id)).status == "AVAILABLE"
        assert await balance(c, buyer["user_id"]) == 2 * PRICE
        status, body = await pay(c, buyer["token"], order_id)
        assert status == 500 and body["error_code"] == "INTERNAL_ERROR"  # the order stays failed


async def test_fault_after_the_seat_is_confirmed_completes_forward(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, saga_lease=LONG_LEASE) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=2 * PRICE)
        status, body = await reserve(c, buyer["token"], seat_id)
        order_id = body["data"]["order_id"]
        faults.arm("purchase.after_confirm_seat")
        status, body = await pay(c, buyer["token"], order_id)
        assert (status, body["error_code"]) == (503, "SERVICE_UNAVAILABLE"), body
        faults.disarm()
        await lapse_leases(c)  # recovery picks it up once the lease lapses
        for _ in range(150):
            order = await c.backends.orders.call("GET", f"/orders/{order_id}")
            record = await c.runtime().runner.find_by_reference(order_id)
            if record is not None and record.status == "COMPLETED":
                break
            await asyncio.sleep(0.1)
        assert record is not None and record.status == "COMPLETED"
        assert order["status"] == "CONFIRMED"
        assert (await seat_status(c, seat_id)).status == "SOLD"
        assert await balance(c, buyer["user_id"]) == PRICE
        status, body = await pay(c, buyer["token"], order_id)
        assert (status, body["error_code"]) == (409, "ORDER_ALREADY_CONFIRMED")


async def test_interrupted_compensation_is_finished_by_recovery(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, saga_lease=LONG_LEASE) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=2 * PRICE)
        status, body = await reserve(c, buyer["token"], seat_id)
        order_id = body["data"]["order_id"]
        faults.arm("purchase.before_confirm_seat")
        faults.arm("purchase.compensate_deduct")  # the refund itself fails the first time
        status, body = await pay(c, buyer["token"], order_id)
        assert status == 500, body
        record = await c.runtime().runner.find_by_reference(order_id)
        assert record is not None and record.status == "COMPENSATING"
        faults.disarm()
        await lapse_leases(c)
        for _ in range(150):
            record = await c.runtime().runner.find_by_reference(order_id)
            if record is not None and record.status == "FAILED":
                break
            await asyncio.sleep(0.1)
        assert record is not None and record.status == "FAILED"
        assert (await c.backends.orders.call("GET", f"/orders/{order_id}"))["status"] == "FAILED"
        assert (await seat_status(c, seat_id)).status == "AVAILABLE"
        assert await balance(c, buyer["user_id"]) == 2 * PRICE
