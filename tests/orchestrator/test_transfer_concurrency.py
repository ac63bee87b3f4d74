"""Races, on SQLite and on PostgreSQL: several transfers of one seat initiated at once (exactly one
wins, the rest TRANSFER_IN_PROGRESS); an admin's reverse racing the completion of a second transfer
of the same seat (the compare-and-set on the owner lets exactly one through; credits conserved);
both parties confirming at the same moment (completed once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from cluster import Cluster, running_cluster
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres
from purchase_support import PRICE
from transfer_support import (
    AMOUNT,
    BUYER_START,
    SELLER_START,
    balances,
    code_for,
    complete_transfer,
    confirm,
    initiate,
    owner,
    sold_seat,
    transfer_record,
)

SERVICES = ("inventory", "users", "orders", "events", "orchestrator")
RIVALS = 5
SECOND = 300  # the second transfer's price


async def on_both_databases(
    tmp_path: Path, database_url: str | None, body: Callable[[Cluster], Awaitable[None]]
) -> None:
    async with running_cluster(tmp_path, database_url=database_url) as c:
        await body(c)


async def postgres(tmp_path: Path, body: Callable[[Cluster], Awaitable[None]]) -> None:
    prefix = fresh_postgres_prefix()
    try:
        await on_both_databases(tmp_path, prefix, body)
    finally:
        await drop_prefix_databases(prefix, SERVICES)


async def rival_initiations(c: Cluster) -> None:
    s = await sold_seat(c)
    buyers = [await c.make_user(credits=BUYER_START) for _ in range(RIVALS)]
    answers = await asyncio.gather(
        *(initiate(c, s["seller"], s["seat_id"], b["email"]) for b in buyers)
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * (RIVALS - 1), answers
    assert all(
        body["error_code"] == "TRANSFER_IN_PROGRESS" for status, body in answers if status == 409
    )
    records = await c.backends.orders.call("GET", "/transfers", params={"seat_id": s["seat_id"]})
    live = [r for r in records if r["status"] == "PENDING_OTP"]
    assert len(live) == 1
    winner = next(body["data"] for status, body in answers if status == 201)
    assert live[0]["transfer_id"] == winner["transfer_id"]
    # Every OTP went to the winner's two parties only.
    for b in buyers:
        if b["user_id"] != winner["buyer_user_id"]:
            assert not c.otp_codes(user_id=b["user_id"], purpose="transfer")


async def test_rival_initiations_on_sqlite(tmp_path: Path) -> None:
    await on_both_databases(tmp_path, None, rival_initiations)


@needs_postgres
async def test_rival_initiations_on_postgres(tmp_path: Path) -> None:
    await postgres(tmp_path, rival_initiations)


async def reverse_races_second_transfer(c: Cluster) -> None:
    """A sells to B (T1); B sells on to C (T2, B confirmed); A disputes T1. Then the admin's
    reverse of T1 and C's confirmation of T2 go at once, for several seats."""
    outcomes = set()
    for _ in range(4):
        s = await sold_seat(c)
        a, b, seat_id, admin = s["seller"], s["buyer"], s["seat_id"], s["admin"]
        cc = await c.make_user(credits=BUYER_START)
        t1 = await complete_transfer(c, s)
        status, body = await initiate(c, b, seat_id, cc["email"], SECOND)
        assert status == 201, body
        t2 = body["data"]["transfer_id"]
        status, _ = await confirm(c, b, t2, code_for(c, b["user_id"], t2))
        assert status == 200
        status, _ = await c.call(
            "POST",
            "/api/transfer/dispute",
            token=a["token"],
            json_body={"transfer_id": t1, "reason": "not paid"},
        )
        assert status == 200
        (rev_status, rev), (conf_status, conf) = await asyncio.gather(
            c.call(
                "POST",
                "/api/transfer/reverse",
                token=admin["token"],
                json_body={"transfer_id": t1},
            ),
            confirm(c, cc, t2, code_for(c, cc["user_id"], t2)),
        )
        seat_owner, seat_status, _ = await owner(c, seat_id)
        assert seat_status == "SOLD"
        r1, r2 = await transfer_record(c, t1), await transfer_record(c, t2)
        total = sum(await balances(c, a, b, cc))
        assert total == (SELLER_START - PRICE) + 2 * BUYER_START  # conserved
        if rev_status == 200:
            # The reverse won: the seat is A's, T2 failed and C kept the credits.
            assert (conf_status, conf["error_code"]) == (409, "SEAT_UNAVAILABLE"), conf
            assert (r1["status"], r2["status"], seat_owner) == ("REVERSED", "FAILED", a["user_id"])
            assert await balances(c, a, b, cc) == [SELLER_START - PRICE, BUYER_START, BUYER_START]
            outcomes.add("reverse")
        else:
            # The second transfer won: the seat is C's, the reverse was refused.
            assert (rev_status, rev["error_code"]) == (409, "SEAT_UNAVAILABLE"), rev
            assert conf_status == 200 and conf["data"]["status"] == "COMPLETED", conf
            assert (r1["status"], r2["status"], seat_owner) == (
                "DISPUTED",
                "COMPLETED",
                cc["user_id"],
            )
            assert await balances(c, a, b, cc) == [
                SELLER_START - PRICE + AMOUNT,
                BUYER_START - AMOUNT + SECOND,
                BUYER_START - SECOND,
            ]
            outcomes.add("transfer")
    assert outcomes  # each round ended in exactly one of the two consistent states


async def test_reverse_racing_a_second_transfer_on_sqlite(tmp_path: Path) -> None:
    await on_both_databases(tmp_path, None, reverse_races_second_transfer)


@needs_postgres
async def test_reverse_racing_a_second_transfer_on_postgres(tmp_path: Path) -> None:
    await postgres(tmp_path, reverse_races_second_transfer)


async def both_confirm_at_once(c: Cluster) -> None:
    for _ in range(3):
        s = await sold_seat(c)
        seller, buyer = s["seller"], s["buyer"]
        status, body = await initiate(c, seller, s["seat_id"], buyer["email"])
        tid = body["data"]["transfer_id"]
        answers = await asyncio.gather(
            *(confirm(c, p, tid, code_for(c, p["user_id"], tid)) for p in (seller, buyer))
        )
        assert all(status == 200 for status, _ in answers), answers
        final = [body["data"]["status"] for _, body in answers]
        assert "COMPLETED" in final, answers
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"
        assert await balances(c, seller, buyer) == [
            SELLER_START - PRICE + AMOUNT,
            BUYER_START - AMOUNT,
        ]
        assert (await owner(c, s["seat_id"]))[0] == buyer["user_id"]


async def test_both_parties_confirm_at_once_on_sqlite(tmp_path: Path) -> None:
    await on_both_databases(tmp_path, None, both_confirm_at_once)


@needs_postgres
async def test_both_parties_confirm_at_once_on_postgres(tmp_path: Path) -> None:
    await postgres(tmp_path, both_confirm_at_once)
