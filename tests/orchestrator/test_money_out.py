"""Money out through the public API: an admin cancels an event (every confirmed order refunded once,
holds and waiting transfers ended, gates answer CANCELLED online and offline), refunds one ticket
(order REFUNDED, credits back once, seat AVAILABLE with a new owner epoch, its codes CANCELLED), and
disputes hold the seller's proceeds (issue 14, must show 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster, running_cluster
from money_support import (
    cancel,
    ledger_total,
    offline_verdict,
    online_verdict,
    orders_of,
    refund,
    refund_entries,
)
from purchase_support import PRICE, balance, reserve
from saga_clock import LONG_LEASE, lapse_leases
from transfer_support import (
    AMOUNT,
    SELLER_START,
    code_for,
    complete_transfer,
    confirm,
    initiate,
    owner,
    sold_seat,
    transfer_record,
)
from verify_support import add_gate, buy, make_event, qr

from central import faults


async def held(c: Cluster, user: dict[str, Any]) -> int:
    data = await c.backends.users.call("GET", f"/credits/{user['user_id']}/held")
    return int(data["held_credits"])


async def test_cancel_event_refunds_every_order_once_and_gates_say_cancelled(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=5)
        admin, seats = event["admin"], event["seat_ids"]
        gate = await add_gate(c, admin["token"])
        buyers = [await buy(c, seats[i], await c.make_user(credits=500)) for i in range(3)]
        codes = [await qr(c, b["token"], seats[i]) for i, b in enumerate(buyers)]
        # a waiting hold and a waiting transfer of the event
        holder = await c.make_user(credits=500)
        status, _ = await reserve(c, holder["token"], seats[3])
        assert status == 200
        third = await c.make_user(credits=500)
        status, body = await initiate(c, buyers[0], seats[0], third["email"], 50)
        assert status == 201, body
        pending_transfer = body["data"]["transfer_id"]
        everyone = [b["user_id"] for b in (*buyers, holder, third)]
        before = await ledger_total(c, everyone)

        status, body = await cancel(c, admin, event["event_id"])
        assert status == 200, body
        assert body["data"]["status"] == "CANCELLED"
        assert body["data"]["orders_refunded"] == 3

        for b in buyers:
            assert await balance(c, b["user_id"]) == 500
        assert await ledger_total(c, everyone) == before + 3 * PRICE
        confirmed = await orders_of(c, event_id=event["event_id"], status="CONFIRMED")
        assert confirmed == []
        for o in await orders_of(c, event_id=event["event_id"], status="REFUNDED"):
            assert await refund_entries(c, o["order_id"]) == 1
        for seat_id in seats:
            assert (await owner(c, seat_id))[1] == "AVAILABLE"
        assert (await transfer_record(c, pending_transfer))["status"] == "FAILED"
        for code in codes:
            assert await online_verdict(c, gate, code) == "CANCELLED"
            assert await offline_verdict(c, gate, code) == "CANCELLED"
        status, body = await reserve(c, holder["token"], seats[4])
        assert status == 410 and body["error_code"] == "EVENT_CANCELLED"
        status, body = await c.call("GET", f"/api/events/{event['event_id']}")
        assert status == 200 and body["data"]["status"] == "CANCELLED"
        assert body["data"]["cancel_reason"] == "the band cancelled"

        # asking again answers the same, and pays nobody twice
        status, again = await cancel(c, admin, event["event_id"])
        assert status == 200 and again["data"]["orders_refunded"] == 3
        assert await ledger_total(c, everyone) == before + 3 * PRICE


async def test_cancel_is_for_admins_and_named_events(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        customer = await c.make_user()
        status, body = await cancel(c, customer, event["event_id"])
        assert status == 403, body
        status, body = await c.call(
            "POST",
            f"/api/admin/events/{event['event_id']}/cancel",
            token=event["admin"]["token"],
            json_body={},
        )
        assert status == 400 and body["details"]["field"] == "reason"
        status, body = await cancel(c, event["admin"], "8d6b1a56-59a8-4a0b-9d4c-2f1c55d1b9f0")
        assert status == 404 and body["error_code"] == "EVENT_NOT_FOUND"
        status, body = await cancel(c, event["admin"], "not-a-uuid")
        assert status == 400 and body["error_code"] == "INVALID_UUID"


async def test_single_refund_frees_the_seat_and_cancels_its_codes(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        admin, seat_id = event["admin"], event["seat_ids"][0]
        gate = await add_gate(c, admin["token"])
        buyer = await buy(c, seat_id, await c.make_user(credits=300))
        code = await qr(c, buyer["token"], seat_id)
        _, _, epoch = await owner(c, seat_id)
        (order,) = await orders_of(c, seat_id=seat_id, status="CONFIRMED")

        for _ in range(2):  # a repeat pays nothing more
            status, body = await refund(c, admin, order["order_id"])
            assert status == 200, body
            assert body["data"]["status"] == "REFUNDED"
            assert body["data"]["credits_refunded"] == PRICE
        assert await balance(c, buyer["user_id"]) == 300
        assert (await c.backends.orders.call("GET", f"/orders/{order['order_id']}"))[
            "status"
        ] == "REFUNDED"
        owner_id, seat_status, new_epoch = await owner(c, seat_id)
        assert (owner_id, seat_status, new_epoch) == ("", "AVAILABLE", epoch + 1)
        assert await online_verdict(c, gate, code) == "CANCELLED"
        assert await offline_verdict(c, gate, code) == "CANCELLED"
        status, body = await c.call("GET", f"/api/tickets/{seat_id}/qr", token=buyer["token"])
        assert status == 403, body

        # the seat sells again; the refunded code stays CANCELLED, the new owner's admits
        second = await buy(c, seat_id, await c.make_user(credits=300))
        assert await online_verdict(c, gate, code) == "CANCELLED"
        assert await online_verdict(c, gate, await qr(c, second["token"], seat_id)) == "SUCCESS"
        # refunding the old order again moves nothing (the seat is someone else's now)
        status, body = await refund(c, admin, order["order_id"])
        assert status == 200, body
        assert (await owner(c, seat_id))[:2] == (second["user_id"], "CHECKED_IN")
        assert await balance(c, buyer["user_id"]) == 300


@pytest.fixture
def disarmed() -> Iterator[None]:
    yield
    faults.disarm()


@pytest.mark.parametrize("point", ["refund.after_seat", "refund.after_credit"])
async def test_a_refund_stopped_half_way_never_admits_its_ticket(
    tmp_path: Path, point: str, disarmed: None
) -> None:
    """Verification judges "paid" from the seat alone, so a refund frees the seat before it
    touches the money or the order: stopped after any of its effects, the ticket already answers
    CANCELLED at the gate (never SUCCESS), and finishing the refund pays back exactly once."""
    async with running_cluster(tmp_path, saga_lease=LONG_LEASE) as c:
        event = await make_event(c, seats=1)
        admin, seat_id = event["admin"], event["seat_ids"][0]
        gate = await add_gate(c, admin["token"])
        buyer = await buy(c, seat_id, await c.make_user(credits=300))
        code = await qr(c, buyer["token"], seat_id)
        (order,) = await orders_of(c, seat_id=seat_id, status="CONFIRMED")

        faults.arm(point, times=1)
        status, body = await refund(c, admin, order["order_id"])
        assert status >= 500, body  # stopped half way
        assert (await owner(c, seat_id))[1] == "AVAILABLE"
        assert await online_verdict(c, gate, code) == "CANCELLED"

        await lapse_leases(c)  # recovery finishes the refund forward
        (done,) = await orders_of(c, seat_id=seat_id)
        assert done["status"] == "REFUNDED"
        assert await refund_entries(c, order["order_id"]) == 1
        assert await balance(c, buyer["user_id"]) == 300
        assert await online_verdict(c, gate, code) == "CANCELLED"


async def test_only_confirmed_orders_are_refunded(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        buyer = await c.make_user(credits=300)
        status, body = await reserve(c, buyer["token"], event["seat_ids"][0])
        assert status == 200
        status, body = await refund(c, event["admin"], body["data"]["order_id"])
        assert status == 409 and body["error_code"] == "ORDER_INVALID_STATE", body
        assert await balance(c, buyer["user_id"]) == 300
        status, body = await refund(c, buyer, "8d6b1a56-59a8-4a0b-9d4c-2f1c55d1b9f0")
        assert status == 403


async def dispute(c: Cluster, party: dict[str, Any], tid: str) -> tuple[int, Any]:
    return await c.call(
        "POST",
        "/api/transfer/dispute",
        token=party["token"],
        json_body={"transfer_id": tid, "reason": "never got what was promised"},
    )


async def test_dispute_holds_the_money_and_the_seat_then_reverse_returns_both(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c, seats=4)
        seller, buyer, seat_id, admin = s["seller"], s["buyer"], s["seat_id"], s["admin"]
        tid = await complete_transfer(c, s)
        seller_after_sale = SELLER_START - PRICE + AMOUNT
        assert await balance(c, seller["user_id"]) == seller_after_sale

        status, body = await dispute(c, buyer, tid)
        assert status == 200, body
        assert body["data"]["status"] == "DISPUTED" and body["data"]["held_credits"] == AMOUNT
        assert await held(c, seller) == AMOUNT

        # the seller cannot spend the held amount: a debit of all but the held part works,
        # one credit more does not
        spendable = seller_after_sale - AMOUNT
        entry = {"user_id": seller["user_id"], "kind": "PURCHASE"}
        try:
            await c.backends.users.call(
                "POST",
                "/credits/entries",
                json={**entry, "amount": -(spendable + 1), "idempotency_key": "spend-too-much"},
            )
            raise AssertionError("the held amount was spent")
        except Exception as exc:
            assert getattr(exc, "code", None) == "INSUFFICIENT_CREDITS", exc
        # ...also through a purchase of a seat priced above what is free
        poor = await c.backends.users.call(
            "POST",
            "/credits/entries",
            json={**entry, "amount": -(spendable - 50), "idempotency_key": "spend-most"},
        )
        assert poor["credit_balance"] == AMOUNT + 50
        status, body = await reserve(c, seller["token"], s["event"]["seat_ids"][1])
        assert status == 200, body
        status, body = await c.call(
            "POST",
            "/api/pay",
            token=seller["token"],
            json_body={"order_id": body["data"]["order_id"]},
        )
        assert status == 402 and body["error_code"] == "INSUFFICIENT_CREDITS", body

        # the seat cannot be passed on while disputed
        third = await c.make_user(credits=1000)
        status, body = await initiate(c, buyer, seat_id, third["email"], 10)
        assert status == 409 and body["error_code"] == "SEAT_DISPUTED", body

        # reverse: seat back to the seller, credits back to the buyer, once; hold gone
        buyer_before = await balance(c, buyer["user_id"])
        status, body = await c.call(
            "POST", "/api/transfer/reverse", token=admin["token"], json_body={"transfer_id": tid}
        )
        assert status == 200, body
        assert body["data"]["status"] == "REVERSED"
        assert await balance(c, buyer["user_id"]) == buyer_before + AMOUNT
        assert await balance(c, seller["user_id"]) == 50
        assert await held(c, seller) == 0
        assert (await owner(c, seat_id))[0] == seller["user_id"]
        status, body = await c.call(
            "POST", "/api/transfer/reverse", token=admin["token"], json_body={"transfer_id": tid}
        )
        assert status == 409 and body["error_code"] == "TRANSFER_INVALID_STATE"
        assert await balance(c, buyer["user_id"]) == buyer_before + AMOUNT


async def test_closing_a_dispute_releases_the_hold_and_the_seat(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c, seats=3)
        seller, buyer, seat_id, admin = s["seller"], s["buyer"], s["seat_id"], s["admin"]
        tid = await complete_transfer(c, s)
        status, body = await dispute(c, seller, tid)
        assert status == 200, body
        assert await held(c, seller) == AMOUNT
        status, body = await c.call(
            "POST", f"/api/admin/transfers/{tid}/close", token=buyer["token"], json_body={}
        )
        assert status == 403

        status, body = await c.call(
            "POST", f"/api/admin/transfers/{tid}/close", token=admin["token"], json_body={}
        )
        assert status == 200, body
        assert body["data"]["status"] == "COMPLETED" and body["data"]["credits_released"] == AMOUNT
        assert await held(c, seller) == 0
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"
        status, body = await c.call(
            "POST", f"/api/admin/transfers/{tid}/close", token=admin["token"], json_body={}
        )
        assert status == 409 and body["error_code"] == "TRANSFER_INVALID_STATE"
        # the seller may spend everything again
        everything = await balance(c, seller["user_id"])
        spent = await c.backends.users.call(
            "POST",
            "/credits/entries",
            json={
                "user_id": seller["user_id"],
                "amount": -everything,
                "kind": "PURCHASE",
                "idempotency_key": "spend-all",
            },
        )
        assert spent["credit_balance"] == 0
        # and the buyer may pass the seat on
        third = await c.make_user(credits=1000)
        status, body = await initiate(c, buyer, seat_id, third["email"], 10)
        assert status == 201, body
        tid2 = body["data"]["transfer_id"]
        for party in (buyer, third):
            status, body = await confirm(c, party, tid2, code_for(c, party["user_id"], tid2))
            assert status == 200, body
        assert (await owner(c, seat_id))[0] == third["user_id"]


async def test_a_dispute_cannot_open_while_the_seat_is_being_passed_on(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c, seats=3)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        tid = await complete_transfer(c, s)
        third = await c.make_user(credits=1000)
        status, body = await initiate(c, buyer, seat_id, third["email"], 10)
        assert status == 201, body
        before = await c.row_counts()
        status, body = await dispute(c, seller, tid)
        assert status == 409 and body["error_code"] == "TRANSFER_IN_PROGRESS", body
        assert await held(c, seller) == 0  # the hold made first was released again
        after = await c.row_counts()
        assert after["users.credit_ledger"] == before["users.credit_ledger"]
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"


async def test_refund_ends_a_waiting_transfer_of_the_seat(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c, seats=2)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"], 40)
        assert status == 201, body
        tid = body["data"]["transfer_id"]
        (order,) = await orders_of(c, seat_id=seat_id, status="CONFIRMED")
        status, body = await refund(c, s["admin"], order["order_id"])
        assert status == 200, body
        assert (await transfer_record(c, tid))["status"] == "FAILED"
        status, body = await confirm(c, buyer, tid, code_for(c, buyer["user_id"], tid))
        assert status == 409 and body["error_code"] == "TRANSFER_INVALID_STATE", body
        assert await balance(c, seller["user_id"]) == SELLER_START  # the price came back
        assert (await owner(c, seat_id))[1] == "AVAILABLE"
