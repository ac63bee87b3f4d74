"""Races, on SQLite and on PostgreSQL: several transfers of one seat initiated at once (exactly one
wins, the rest TRANSFER_IN_PROGRESS); a dispute racing the initiation of a second transfer of the
same seat (the orders database lets exactly one through; credits conserved); both parties confirming
at the same moment (completed once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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


async def dispute_or_pass_on(c: Cluster) -> str:
    """One round of the race below; answers which side won."""
    s = await sold_seat(c)
    a, b, seat_id = s["seller"], s["buyer"], s["seat_id"]
    cc = await c.make_user(credits=BUYER_START)
    t1 = await complete_transfer(c, s)
    go = asyncio.Event()

    async def dispute() -> tuple[int, Any]:
        await go.wait()
        return await c.call(
            "POST",
            "/api/transfer/dispute",
            token=a["token"],
            json_body={"transfer_id": t1, "reason": "not paid"},
        )

    async def pass_on() -> tuple[int, Any]:
        await go.wait()
        return await initiate(c, b, seat_id, cc["email"], SECOND)

    tasks = [asyncio.create_task(dispute()), asyncio.create_task(pass_on())]
    await asyncio.sleep(0)
    go.set()
    (dis_status, dis), (ini_status, ini) = await asyncio.gather(*tasks)
    held = await c.backends.users.call("GET", f"/credits/{a['user_id']}/held")
    r1 = await transfer_record(c, t1)
    if dis_status == 200:
        assert (ini_status, ini["error_code"]) == (409, "SEAT_DISPUTED"), ini
        assert r1["status"] == "DISPUTED" and held["held_credits"] == AMOUNT
        winner = "dispute"
    else:
        assert (dis_status, dis["error_code"]) == (409, "TRANSFER_IN_PROGRESS"), dis
        assert ini_status == 201, ini
        assert r1["status"] == "COMPLETED" and held["held_credits"] == 0
        winner = "transfer"
    assert (await owner(c, seat_id))[:2] == (b["user_id"], "SOLD")
    total = sum(await balances(c, a, b, cc))
    assert total == (SELLER_START - PRICE) + 2 * BUYER_START  # conserved
    return winner


async def dispute_races_second_transfer(c: Cluster) -> None:
    """A sells to B (T1); then A's dispute of T1 and B's passing the seat on to C (T2) go at
    once, for several seats. A seat under dispute cannot be passed on, and a transfer cannot be
    disputed while its seat is being passed on: exactly one of the two wins every time (the
    orders database's one-live-transfer index decides), and the loser changes nothing."""
    outcomes = {await dispute_or_pass_on(c) for _ in range(4)}
    assert outcomes  # each round ended in exactly one of the two consistent states


async def test_dispute_racing_a_second_transfer_on_sqlite(tmp_path: Path) -> None:
    await on_both_databases(tmp_path, None, dispute_races_second_transfer)


@needs_postgres
async def test_dispute_racing_a_second_transfer_on_postgres(tmp_path: Path) -> None:
    await postgres(tmp_path, dispute_races_second_transfer)


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
