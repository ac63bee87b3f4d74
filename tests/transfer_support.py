"""Shared steps for transfer tests: a sold seat and a buyer, initiate/confirm through the public API,
each party's own OTP code, and read-backs of credits, the seat and the transfer record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from cluster import Cluster
from purchase_support import PRICE, balance
from verify_support import buy, make_event, seat

AMOUNT = 250
SELLER_START = 1000  # the seller pays PRICE for the seat out of this
BUYER_START = 1000


async def sold_seat(c: Cluster, *, seats: int = 3) -> dict[str, Any]:
    """An event, a seller who bought its first seat, and a buyer with credits."""
    event = await make_event(c, seats=seats)
    seller = await buy(c, event["seat_ids"][0], await c.make_user(credits=SELLER_START))
    buyer = await c.make_user(credits=BUYER_START)
    return {
        "event": event,
        "admin": event["admin"],
        "seat_id": event["seat_ids"][0],
        "seller": seller,
        "buyer": buyer,
    }


async def initiate(
    c: Cluster,
    seller: dict[str, Any],
    seat_id: str,
    buyer_email: str,
    amount: int = AMOUNT,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    return await c.call(
        "POST",
        "/api/transfer/initiate",
        token=seller["token"],
        json_body={"seat_id": seat_id, "buyer_email": buyer_email, "credits_amount": amount},
        headers=headers,
    )


async def confirm(
    c: Cluster,
    party: dict[str, Any],
    transfer_id: str,
    code: str,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    return await c.call(
        "POST",
        "/api/transfer/confirm",
        token=party["token"],
        json_body={"transfer_id": transfer_id, "otp_code": code},
        headers=headers,
    )


def code_for(c: Cluster, user_id: str, transfer_id: str) -> str:
    """The latest transfer code delivered to `user_id` for this transfer."""
    codes = [
        item["code"]
        for item in map(json.loads, c.otp_file.read_text().splitlines())
        if item["user_id"] == user_id
        and item["purpose"] == "transfer"
        and item["reference_id"] == transfer_id
    ]
    assert codes, f"no transfer code for {user_id}"
    return str(codes[-1])


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


async def transfer_record(c: Cluster, transfer_id: str) -> dict[str, Any]:
    return dict(await c.backends.orders.call("GET", f"/transfers/{transfer_id}"))


async def owner(c: Cluster, seat_id: str) -> tuple[str, str, int]:
    s = await seat(c, seat_id)
    return s.owner_user_id, s.status, s.owner_epoch


async def balances(c: Cluster, *users: dict[str, Any]) -> list[int]:
    return [await balance(c, u["user_id"]) for u in users]


async def saga_status(c: Cluster, saga_id: str, want: str, wait: float = 10.0) -> Any:
    """The saga's record once it reaches `want` (recovery may take a few sweeps)."""
    runner = c.runtime().runner
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        record = await runner.get(saga_id)
        if record is not None and record.status == want:
            return record
        if asyncio.get_running_loop().time() > deadline:
            return record
        await asyncio.sleep(0.05)


async def complete_transfer(c: Cluster, s: dict[str, Any], amount: int = AMOUNT) -> str:
    """A transfer of the seat from seller to buyer, confirmed by both; answers its id."""
    status, body = await initiate(c, s["seller"], s["seat_id"], s["buyer"]["email"], amount)
    assert status == 201, body
    tid = body["data"]["transfer_id"]
    for party in (s["seller"], s["buyer"]):
        status, body = await confirm(c, party, tid, code_for(c, party["user_id"], tid))
        assert status == 200, body
    assert body["data"]["status"] == "COMPLETED", body
    return str(tid)


__all__ = ["PRICE"]
