"""Seats, orders, tickets and transfers under attack, against a real central: hoarding holds,
other people's things, the buyer's balance, and the oversized event."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from tests.abuse.conftest import Central, released_at_once
from tests.abuse.table import Ledger


def _counts(statuses: list[int]) -> str:
    return ", ".join(f"{n}×{s}" for s, n in sorted(Counter(statuses).items()))


async def test_one_account_cannot_hold_every_seat(central: Central, ledger: Ledger) -> None:
    hoarder = await central.user()
    event = await central.event(rows=1, per_row=12)
    async with central.client() as c:
        answers = await released_at_once(
            *(
                (
                    lambda seat_id=seat_id: c.post(
                        "/api/reserve",
                        json={"seat_id": seat_id},
                        headers=central.auth(hoarder["token"]),
                    )
                )
                for seat_id in event["seat_ids"]
            )
        )
    held = central.rows(
        "inventory",
        "SELECT count(*) FROM seats WHERE held_by_user_id = ? AND status = 'HELD'",
        hoarder["user_id"],
    )[0][0]
    codes = Counter(r.json().get("error_code", "HELD") for r in answers)
    ledger.attempt(
        "seats",
        "12 parallel reserves by one account",
        attempts=12,
        expected="4 held, 8×HOLD_LIMIT_REACHED",
        outcome=f"{held} held, {codes['HOLD_LIMIT_REACHED']}×HOLD_LIMIT_REACHED",
    )


async def test_reserve_is_rate_limited_per_user(central: Central, ledger: Ledger) -> None:
    user = await central.user()
    statuses = []
    async with central.client() as c:
        for _ in range(32):
            r = await c.post(
                "/api/reserve",
                json={"seat_id": str(uuid.uuid4())},  # no such seat: each call still counts
                headers=central.auth(user["token"]),
            )
            statuses.append(r.status_code)
    ledger.attempt(
        "seats",
        "32 reserves by one user in a minute",
        attempts=32,
        expected="30×404, 2×429",
        outcome=_counts(statuses),
    )


async def _buy(central: Central, c: Any, user: dict[str, Any], seat_id: str) -> str:
    r = await c.post("/api/reserve", json={"seat_id": seat_id}, headers=central.auth(user["token"]))
    assert r.status_code == 200, r.text
    order_id = str(r.json()["data"]["order_id"])
    r = await c.post("/api/pay", json={"order_id": order_id}, headers=central.auth(user["token"]))
    assert r.status_code == 200, r.text
    return order_id


async def test_other_peoples_tickets_orders_and_transfers(central: Central, ledger: Ledger) -> None:
    owner = await central.user(credits=100)
    other = await central.user(credits=100)
    third = await central.user()
    event = await central.event(rows=1, per_row=3)
    seat_id = event["seat_ids"][0]
    async with central.client() as c:
        order_id = await _buy(central, c, owner, seat_id)
        r = await c.post(
            "/api/transfer/initiate",
            json={"seat_id": seat_id, "buyer_email": third["email"], "credits_amount": 0},
            headers=central.auth(owner["token"]),
        )
        assert r.status_code == 201, r.text
        transfer_id = r.json()["data"]["transfer_id"]
        before = central.counts()
        as_other = central.auth(other["token"])
        attempts = [
            (
                "QR of another's ticket",
                await c.get(f"/api/tickets/{seat_id}/qr", headers=as_other),
                "403",
            ),
            (
                "pay another's order",
                await c.post("/api/pay", json={"order_id": order_id}, headers=as_other),
                "403",
            ),
            (
                "read another's transfer",
                await c.get(f"/api/transfers/{transfer_id}", headers=as_other),
                "403",
            ),
            (
                "confirm another's transfer",
                await c.post(
                    "/api/transfer/confirm",
                    json={"transfer_id": transfer_id, "otp_code": "123456"},
                    headers=as_other,
                ),
                "403",
            ),
            (
                "initiate a transfer of another's seat",
                await c.post(
                    "/api/transfer/initiate",
                    json={"seat_id": seat_id, "buyer_email": third["email"], "credits_amount": 0},
                    headers=as_other,
                ),
                "403",
            ),
            (
                "verify-otp on another's order",
                await c.post(
                    "/api/verify-otp",
                    json={"context": "purchase", "reference_id": order_id, "otp_code": "123456"},
                    headers=as_other,
                ),
                "403",
            ),
        ]
        tickets = (await c.get("/api/tickets", headers=as_other)).json()["data"]
    for name, response, expected in attempts:
        ledger.attempt(
            "ownership", name, attempts=1, expected=expected, outcome=str(response.status_code)
        )
    ledger.attempt(
        "ownership",
        "another's ticket in my list",
        attempts=1,
        expected="absent",
        outcome="absent" if all(t["seat_id"] != seat_id for t in tickets) else "listed",
    )
    after = central.counts()
    changed = {k: v for k, v in after.items() if v != before.get(k)}
    ledger.attempt(
        "ownership",
        "rows written by the refused calls",
        attempts=1,
        expected="none",
        outcome="none" if not changed else str(changed),
    )


async def test_the_seller_does_not_learn_the_buyers_balance(
    central: Central, ledger: Ledger
) -> None:
    seller = await central.user(credits=100)
    buyer = await central.user(credits=7)
    event = await central.event(rows=1, per_row=2)
    seat_id = event["seat_ids"][0]
    async with central.client() as c:
        await _buy(central, c, seller, seat_id)
        probes = []
        for amount in (5, 8):  # below and above the buyer's 7 credits
            r = await c.post(
                "/api/transfer/initiate",
                json={"seat_id": seat_id, "buyer_email": buyer["email"], "credits_amount": amount},
                headers=central.auth(seller["token"]),
            )
            probes.append(r)
            if r.status_code == 201:
                await _end_transfer(central, c, seller, r.json()["data"]["transfer_id"])
        ledger.attempt(
            "privacy",
            "initiate for 5 and for 8 credits (buyer has 7)",
            attempts=2,
            expected="201, 201",
            outcome=", ".join(str(r.status_code) for r in probes),
        )
        # The buyer agrees to 8 credits it does not have: the seller's confirm fails, telling
        # it nothing about the buyer's balance.
        r = await c.post(
            "/api/transfer/initiate",
            json={"seat_id": seat_id, "buyer_email": buyer["email"], "credits_amount": 8},
            headers=central.auth(seller["token"]),
        )
        assert r.status_code == 201, r.text
        transfer_id = r.json()["data"]["transfer_id"]
        for party in (buyer, seller):
            code = central.codes(party["user_id"], "transfer")[-1]
            answer = await c.post(
                "/api/transfer/confirm",
                json={"transfer_id": transfer_id, "otp_code": code},
                headers=central.auth(party["token"]),
            )
    body = answer.json()
    leaked = sorted(set(body.get("details") or {}) & {"current_balance", "user_id", "required"})
    ledger.attempt(
        "privacy",
        "the failed confirm's 402 answer to the seller",
        attempts=1,
        expected="402, no balance or user id",
        outcome=f"{answer.status_code}, "
        + (f"carries {leaked}" if leaked else "no balance or user id"),
    )


async def _end_transfer(central: Central, c: Any, seller: dict[str, Any], transfer_id: str) -> None:
    for _ in range(3):
        await c.post(
            "/api/transfer/confirm",
            json={"transfer_id": transfer_id, "otp_code": "000000"},
            headers=central.auth(seller["token"]),
        )


async def test_an_oversized_event_leaves_no_orphan(central: Central, ledger: Ledger) -> None:
    before = central.count("events", "events")
    async with central.client() as c:
        r = await c.post(
            "/api/admin/events",
            json={
                "name": "Too big",
                "venue": {"name": "Main"},
                "hall_id": "HALL-Z",
                "event_date": "2030-01-01T20:00:00+00:00",
                "pricing": {"STANDARD": 10},
                "seats": {"rows": 200, "seats_per_row": 500},
            },
            headers=central.auth(central.admin_token),
        )
    after = central.count("events", "events")
    ledger.attempt(
        "admin",
        "an event of 200 × 500 seats",
        attempts=1,
        expected="400 naming the limit",
        outcome=f"{r.status_code} naming the limit"
        if r.status_code == 400 and "seats" in r.json().get("message", "")
        else f"{r.status_code} {r.text[:80]}",
        trace="none" if after == before else f"{after - before} event(s) without seats",
        trace_ok=after == before,
    )
