"""Hold expiry: through RabbitMQ's dead-letter path, by the deadline sweeper when there is no
broker, a stale expiry message never freeing a newer hold, and pay racing the expiry."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

from cluster import Cluster, running_cluster
from conftest import AMQP_URL, needs_rabbitmq
from purchase_support import PRICE, balance, make_event, pay, reserve, seat_status

from central.messaging import HoldQueue


async def wait_for(predicate, timeout: float, interval: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    """Poll until predicate() is true; answer the seconds it took (fails the test on timeout)."""
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(interval)


async def order_is(c: Cluster, order_id: str, status: str) -> bool:
    return (await c.backends.orders.call("GET", f"/orders/{order_id}"))["status"] == status


@needs_rabbitmq
async def test_hold_expires_through_rabbitmq(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    # The sweeper runs every 60 s here, so only the broker's dead-letter path can be in time.
    async with running_cluster(
        tmp_path, amqp_url=AMQP_URL, amqp_prefix=prefix, hold_ttl=2, sweep_interval=60
    ) as c:
        try:
            event = await make_event(c)
            seat_id = event["seat_ids"][0]
            buyer = await c.make_user(credits=PRICE)
            status, body = await reserve(c, buyer["token"], seat_id)
            assert status == 200, body
            order_id = body["data"]["order_id"]
            reserved_at = time.monotonic()

            async def released() -> bool:
                return (await seat_status(c, seat_id)).status == "AVAILABLE" and await order_is(
                    c, order_id, "FAILED"
                )

            await wait_for(released, timeout=5)
            assert time.monotonic() - reserved_at <= 3.0
            assert await balance(c, buyer["user_id"]) == PRICE
            status, body = await pay(c, buyer["token"], order_id)
            assert (status, body["error_code"]) == (410, "HOLD_EXPIRED")
        finally:
            await c.runtime().holds.delete_topology()


@needs_rabbitmq
async def test_stale_expiry_message_does_not_free_a_newer_hold(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    async with running_cluster(
        tmp_path, amqp_url=AMQP_URL, amqp_prefix=prefix, hold_ttl=4, sweep_interval=60
    ) as c:
        injector = HoldQueue(AMQP_URL, 1, prefix=prefix)  # a 1 s hold queue on the same topology
        await injector.start()
        try:
            event = await make_event(c)
            seat_id = event["seat_ids"][0]
            first = await c.make_user(credits=PRICE, flagged=True)
            second = await c.make_user(credits=PRICE)

            # Hold A ends early: the flagged buyer burns the three OTP attempts.
            status, body = await reserve(c, first["token"], seat_id)
            order_a = body["data"]["order_id"]
            record_a = await c.runtime().runner.find_by_reference(order_a)
            await pay(c, first["token"], order_a)
            code = c.otp_codes(user_id=first["user_id"])[-1]
            wrong = "000000" if code != "000000" else "111111"
            for _ in range(3):
                await c.call(
                    "POST",
                    "/api/verify-otp",
                    json_body={"context": "purchase", "reference_id": order_a, "otp_code": wrong},
                    token=first["token"],
                )
            assert (await seat_status(c, seat_id)).status == "AVAILABLE"

            # Hold B on the same seat, then A's expiry message arrives (late, as after a requeue).
            status, body = await reserve(c, second["token"], seat_id)
            order_b = body["data"]["order_id"]
            seat = await seat_status(c, seat_id)
            hold_b = seat.hold_id
            await injector.publish_hold(
                {
                    "saga_id": record_a.saga_id,
                    "seat_id": seat_id,
                    "hold_id": record_a.data["hold_id"],
                    "order_id": order_a,
                }
            )
            await asyncio.sleep(2.0)  # A's message has been dead-lettered and consumed by now
            seat = await seat_status(c, seat_id)
            assert (seat.status, seat.hold_id, seat.held_by_user_id) == (
                "HELD",
                hold_b,
                second["user_id"],
            )
            assert await order_is(c, order_b, "PENDING")
            status, body = await pay(c, second["token"], order_b)
            assert status == 200, body
        finally:
            await injector.delete_topology()
            await injector.close()


async def test_without_a_broker_the_sweeper_expires_holds(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, hold_ttl=2, sweep_interval=0.5) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=PRICE)
        status, body = await reserve(c, buyer["token"], seat_id)
        order_id = body["data"]["order_id"]
        reserved_at = time.monotonic()

        async def released() -> bool:
            return (await seat_status(c, seat_id)).status == "AVAILABLE" and await order_is(
                c, order_id, "FAILED"
            )

        await wait_for(released, timeout=6)
        assert time.monotonic() - reserved_at <= 2 + 2
        assert await balance(c, buyer["user_id"]) == PRICE


async def test_pay_racing_expiry_is_all_or_nothing(tmp_path: Path) -> None:
    """Pay lands just before, at or just after the hold's end, many times; every run ends either
    CONFIRMED + SOLD + charged, or FAILED + AVAILABLE + not charged."""
    ttl = 1
    runs = 24
    rng = random.Random(7)
    async with running_cluster(tmp_path, hold_ttl=ttl, sweep_interval=0.1) as c:
        event = await make_event(c, seats_per_row=runs)
        outcomes = {"CONFIRMED": 0, "FAILED": 0}

        async def one(seat_id: str) -> str:
            buyer = await c.make_user(credits=PRICE)
            status, body = await reserve(c, buyer["token"], seat_id)
            assert status == 200, body
            order_id = body["data"]["order_id"]
            await asyncio.sleep(ttl + rng.uniform(-0.15, 0.1))
            await pay(c, buyer["token"], order_id)

            async def settled() -> bool:
                order = await c.backends.orders.call("GET", f"/orders/{order_id}")
                seat = await seat_status(c, seat_id)
                return order["status"] != "PENDING" and seat.status != "HELD"

            await wait_for(settled, timeout=ttl + 5)
            order = await c.backends.orders.call("GET", f"/orders/{order_id}")
            seat = await seat_status(c, seat_id)
            spent = PRICE - await balance(c, buyer["user_id"])
            if order["status"] == "CONFIRMED":
                assert (seat.status, seat.owner_user_id, spent) == ("SOLD", buyer["user_id"], PRICE)
            else:
                assert (order["status"], seat.status, spent) == ("FAILED", "AVAILABLE", 0)
            return str(order["status"])

        for batch in range(0, runs, 6):
            results = await asyncio.gather(*(one(s) for s in event["seat_ids"][batch : batch + 6]))
            for r in results:
                outcomes[r] += 1
        assert sum(outcomes.values()) == runs
