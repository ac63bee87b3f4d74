"""Scenario 1 through the public API: happy paths, OTP for flagged users, insufficient credits,
idempotent and concurrent pays."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cluster import running_cluster
from purchase_support import PRICE, balance, make_event, order_status, pay, reserve, seat_status


async def test_normal_user_reserves_and_pays(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=250)

        status, body = await reserve(c, buyer["token"], seat_id)
        assert status == 200, body
        order_id = body["data"]["order_id"]
        assert (
            body["data"]["status"] == "HELD" and body["data"]["ttl_seconds"] == c.settings.hold_ttl
        )
        assert (await seat_status(c, seat_id)).status == "HELD"
        assert await order_status(c, order_id) == "PENDING"

        status, body = await reserve(c, (await c.make_user())["token"], seat_id)
        assert (status, body["error_code"]) == (409, "SEAT_UNAVAILABLE")

        status, body = await pay(c, buyer["token"], order_id)
        assert status == 200, body
        assert body["data"] == {
            "order_id": order_id,
            "seat_id": seat_id,
            "status": "CONFIRMED",
            "credits_charged": PRICE,
            "remaining_balance": 150,
        }
        seat = await seat_status(c, seat_id)
        assert (seat.status, seat.owner_user_id) == ("SOLD", buyer["user_id"])
        assert await order_status(c, order_id) == "CONFIRMED"
        assert await balance(c, buyer["user_id"]) == 150

        status, body = await pay(c, buyer["token"], order_id)
        assert (status, body["error_code"]) == (409, "ORDER_ALREADY_CONFIRMED")
        status, body = await reserve(c, buyer["token"], seat_id)
        assert (status, body["error_code"]) == (409, "SEAT_ALREADY_SOLD")
        other = await c.make_user(credits=500)
        status, body = await pay(c, other["token"], order_id)
        assert (status, body["error_code"]) == (403, "FORBIDDEN")


async def test_flagged_user_needs_otp(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=PRICE, flagged=True)
        status, body = await reserve(c, buyer["token"], seat_id)
        order_id = body["data"]["order_id"]

        status, body = await pay(c, buyer["token"], order_id)
        assert (status, body["error_code"]) == (428, "OTP_REQUIRED")
        codes = c.otp_codes(user_id=buyer["user_id"], purpose="purchase")
        assert len(codes) == 1
        assert await balance(c, buyer["user_id"]) == PRICE

        verify = {"context": "purchase", "reference_id": order_id, "otp_code": codes[0]}
        status, body = await c.call(
            "POST", "/api/verify-otp", json_body=verify, token=buyer["token"]
        )
        assert status == 200 and body["data"]["verified"] is True

        status, body = await pay(c, buyer["token"], order_id)
        assert status == 200, body
        assert (await seat_status(c, seat_id)).status == "SOLD"
        assert await balance(c, buyer["user_id"]) == 0


async def test_flagged_user_three_wrong_codes_fail_the_order(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=PRICE, flagged=True)
        status, body = await reserve(c, buyer["token"], seat_id)
        order_id = body["data"]["order_id"]
        status, body = await pay(c, buyer["token"], order_id)
        assert status == 428
        right = c.otp_codes(user_id=buyer["user_id"], purpose="purchase")[0]
        wrong = "000000" if right != "000000" else "111111"
        verify = {"context": "purchase", "reference_id": order_id, "otp_code": wrong}
        answers = []
        for _ in range(3):
            status, body = await c.call(
                "POST", "/api/verify-otp", json_body=verify, token=buyer["token"]
            )
            answers.append(
                (status, body["error_code"], (body.get("details") or {}).get("attempts_left"))
            )
        assert answers == [
            (401, "OTP_INVALID", 2),
            (401, "OTP_INVALID", 1),
            (429, "OTP_MAX_RETRIES", None),
        ]
        assert await order_status(c, order_id) == "FAILED"
        assert (await seat_status(c, seat_id)).status == "AVAILABLE"
        assert await balance(c, buyer["user_id"]) == PRICE
        status, body = await pay(c, buyer["token"], order_id)
        assert (status, body["error_code"]) == (429, "OTP_MAX_RETRIES")
        # The seat can be bought again by someone else.
        status, body = await reserve(c, (await c.make_user())["token"], seat_id)
        assert status == 200, body


async def test_insufficient_credits_keeps_the_hold_until_top_up(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await c.make_user(credits=PRICE - 1)
        status, body = await reserve(c, buyer["token"], seat_id)
        order_id = body["data"]["order_id"]
        status, body = await pay(c, buyer["token"], order_id)
        assert (status, body["error_code"]) == (402, "INSUFFICIENT_CREDITS")
        assert (await seat_status(c, seat_id)).status == "HELD"
        assert await order_status(c, order_id) == "PENDING"
        status, _ = await c.call(
            "POST",
            "/api/admin/credits/grant",
            json_body={"user_id": buyer["user_id"], "amount": 1},
            token=event["admin"]["token"],
        )
        assert status == 200
        status, body = await pay(c, buyer["token"], order_id)
        assert status == 200, body
        assert await balance(c, buyer["user_id"]) == 0


async def test_concurrent_pays_charge_once(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        buyer = await c.make_user(credits=10 * PRICE)

        # 20 identical pays with one Idempotency-Key: one charge, 20 identical answers.
        status, body = await reserve(c, buyer["token"], event["seat_ids"][0])
        order_id = body["data"]["order_id"]
        answers = await asyncio.gather(
            *(pay(c, buyer["token"], order_id, **{"Idempotency-Key": "pay-1"}) for _ in range(20))
        )
        assert all(a == answers[0] for a in answers), answers
        assert answers[0][0] == 200
        assert await balance(c, buyer["user_id"]) == 9 * PRICE

        # 20 pays without a key for one order: one charge, the rest ORDER_ALREADY_CONFIRMED.
        status, body = await reserve(c, buyer["token"], event["seat_ids"][1])
        order_id = body["data"]["order_id"]
        answers = await asyncio.gather(*(pay(c, buyer["token"], order_id) for _ in range(20)))
        statuses = sorted(a[0] for a in answers)
        assert statuses.count(200) == 1, answers
        assert all(a[1]["error_code"] == "ORDER_ALREADY_CONFIRMED" for a in answers if a[0] != 200)
        assert await balance(c, buyer["user_id"]) == 8 * PRICE


async def test_reserve_with_idempotency_key_holds_once(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        buyer = await c.make_user(credits=PRICE)
        seat_id = event["seat_ids"][0]
        answers = await asyncio.gather(
            *(reserve(c, buyer["token"], seat_id, **{"Idempotency-Key": "r-1"}) for _ in range(5))
        )
        assert all(a == answers[0] for a in answers)
        assert answers[0][0] == 200
        status, body = await c.call(
            "POST",
            "/api/reserve",
            json_body={"seat_id": event["seat_ids"][1]},
            token=buyer["token"],
            headers={"Idempotency-Key": "r-1"},
        )
        assert (status, body["error_code"]) == (409, "IDEMPOTENCY_CONFLICT")


async def test_two_orchestrator_replicas_drive_one_saga_once(tmp_path: Path) -> None:
    """Two orchestrators on one saga log (as behind a load balancer): pays for one order sent to
    both are driven by one runner at a time (the lease) and charge once."""
    from contextlib import AsyncExitStack

    from central.orchestrator.keys import runtime_key
    from central.serve import Addresses, start_orchestrator

    async with running_cluster(tmp_path) as c:
        b = c.backends
        addresses = Addresses(
            users_url=b.users.base_url,
            orders_url=b.orders.base_url,
            events_url=b.events.base_url,
            inventory_addr=b.inventory.address,
        )
        async with AsyncExitStack() as stack:
            port, _backends, app = await start_orchestrator(stack, c.settings, addresses)
            replica = f"http://127.0.0.1:{port}"
            runners = {c.runtime().runner.owner, app[runtime_key].runner.owner}
            assert len(runners) == 2
            event = await make_event(c)
            buyer = await c.make_user(credits=10 * PRICE)
            status, body = await reserve(c, buyer["token"], event["seat_ids"][0])
            order_id = body["data"]["order_id"]

            async def pay_at(url: str) -> int:
                async with c.session.post(
                    url + "/api/pay",
                    json={"order_id": order_id},
                    headers={"Authorization": f"Bearer {buyer['token']}"},
                ) as resp:
                    return resp.status

            statuses = await asyncio.gather(
                *(pay_at(c.url if i % 2 else replica) for i in range(10))
            )
            assert sorted(statuses).count(200) == 1, statuses
            assert set(statuses) <= {200, 409}
            assert await balance(c, buyer["user_id"]) == 9 * PRICE
            assert (await seat_status(c, event["seat_ids"][0])).status == "SOLD"
