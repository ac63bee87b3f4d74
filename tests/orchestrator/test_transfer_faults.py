"""The seed's transfer compensation matrix, one test per row, a fault injected at the step:

  record create        → INTERNAL_ERROR, nothing left behind
  OTP send             → transfer FAILED
  (OTP verify          → 3 wrong codes, FAILED: test_transfer_api)
  credit transfer      → FAILED, no ownership change, credits where they were
  UpdateOwner          → the credit transfer reversed, FAILED (an injected fault and a real refusal)
  final status update  → credits and seat already consistent; finished forward by recovery

plus an interrupted compensation finished by recovery, and the admin's reverse at each step."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster, running_cluster
from purchase_support import PRICE
from saga_clock import LONG_LEASE, lapse_leases
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
    saga_status,
    sold_seat,
    transfer_record,
)
from verify_support import add_gate, buy, entry_logs, gate_verify, qr

from central import faults

INITIATE_POINTS = [
    "before_create_record",
    "after_create_record",
    "before_send_otps",
    "after_send_otps",
    "after_await_otp",
]
# Before the seat moves: the transfer fails, the credits are back where they were.
COMPLETE_BACK_POINTS = [
    "after_check_consent",
    "before_move_credits",
    "after_move_credits",
    "before_update_owner",
]
# Past the pivot (the seat moved): finished forward.
COMPLETE_FORWARD_POINTS = ["after_update_owner", "before_mark_completed", "after_mark_completed"]
LEASE, SWEEP = LONG_LEASE, 0.2  # only lapse_leases() (a moved clock) ends a lease


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    faults.disarm()


def untouched(s: dict[str, Any]) -> list[int]:
    return [SELLER_START - PRICE, BUYER_START]


def moved(s: dict[str, Any]) -> list[int]:
    return [SELLER_START - PRICE + AMOUNT, BUYER_START - AMOUNT]


async def both_confirm_last_faulted(c: Cluster, s: dict[str, Any], tid: str) -> tuple[int, Any]:
    """The seller confirms cleanly; the buyer's confirmation (which completes) meets the fault."""
    seller, buyer = s["seller"], s["buyer"]
    status, _ = await confirm(c, seller, tid, code_for(c, seller["user_id"], tid))
    assert status == 200
    return await confirm(c, buyer, tid, code_for(c, buyer["user_id"], tid))


@pytest.mark.parametrize("point", INITIATE_POINTS)
async def test_fault_while_initiating_fails_the_transfer(tmp_path: Path, point: str) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        faults.arm(f"transfer.{point}")
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        assert (status, body["error_code"]) == (500, "INTERNAL_ERROR"), body
        faults.disarm()
        records = await c.backends.orders.call("GET", "/transfers", params={"seat_id": seat_id})
        if point == "before_create_record":
            assert records == []  # "record create": nothing was written
        else:
            assert [r["status"] for r in records] == ["FAILED"]  # "OTP send" and after
        assert await balances(c, seller, buyer) == untouched(s)
        assert (await owner(c, seat_id))[0] == seller["user_id"]
        # Nothing is stuck: the seat transfers normally afterwards.
        tid = await complete_transfer(c, s)
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"


@pytest.mark.parametrize("point", COMPLETE_BACK_POINTS)
async def test_fault_before_the_seat_moves_rolls_back(tmp_path: Path, point: str) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]
        _, _, epoch = await owner(c, seat_id)
        faults.arm(f"transfer.{point}")
        status, body = await both_confirm_last_faulted(c, s, tid)
        assert (status, body["error_code"]) == (500, "INTERNAL_ERROR"), body
        faults.disarm()
        assert (await transfer_record(c, tid))["status"] == "FAILED"
        assert (await saga_status(c, tid, "FAILED")).status == "FAILED"
        assert await balances(c, seller, buyer) == untouched(s)
        assert await owner(c, seat_id) == (seller["user_id"], "SOLD", epoch)
        if point == "after_move_credits":  # the credits did move, and came back by a reversal
            entry = await c.backends.users.call("GET", f"/credits/entries/{tid}:move_credits:debit")
            assert entry["amount"] == -AMOUNT


async def test_update_owner_refused_reverses_the_credits(tmp_path: Path) -> None:
    """A real UpdateOwner refusal: the seller checks in with the ticket between initiate and the
    last confirmation; the compare-and-set fails, the buyer is refunded, the transfer FAILED."""
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]
        gate = await add_gate(c, s["admin"]["token"])
        scan_id = str(uuid.uuid4())
        status, body = await gate_verify(c, gate, await qr(c, seller["token"], seat_id), scan_id)
        assert body["data"]["result"] == "SUCCESS"
        await entry_logs(c, gate, scan_id)
        status, body = await both_confirm_last_faulted(c, s, tid)
        assert (status, body["error_code"]) == (409, "SEAT_UNAVAILABLE"), body
        assert (await transfer_record(c, tid))["status"] == "FAILED"
        assert await balances(c, seller, buyer) == untouched(s)
        assert (await owner(c, seat_id))[:2] == (seller["user_id"], "CHECKED_IN")
        # The credits moved and were moved back: both pairs are in the ledger.
        for key in (f"{tid}:move_credits", f"{tid}:move_credits:undo"):
            entry = await c.backends.users.call("GET", f"/credits/entries/{key}:debit")
            assert abs(entry["amount"]) == AMOUNT


@pytest.mark.parametrize("point", COMPLETE_FORWARD_POINTS)
async def test_fault_after_the_seat_moved_completes_forward(tmp_path: Path, point: str) -> None:
    async with running_cluster(tmp_path, saga_lease=LEASE, sweep_interval=SWEEP) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]
        faults.arm(f"transfer.{point}")
        status, body = await both_confirm_last_faulted(c, s, tid)
        assert (status, body["error_code"]) == (503, "SERVICE_UNAVAILABLE"), body
        faults.disarm()
        await lapse_leases(c)
        record = await saga_status(c, tid, "COMPLETED")
        assert record is not None and record.status == "COMPLETED"
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"
        assert await balances(c, seller, buyer) == moved(s)
        assert (await owner(c, seat_id))[:2] == (buyer["user_id"], "SOLD")
        # The buyer asking again learns it is done; nothing moves twice.
        status, body = await confirm(c, buyer, tid, code_for(c, buyer["user_id"], tid))
        assert (status, body["error_code"]) == (409, "TRANSFER_INVALID_STATE")
        assert await balances(c, seller, buyer) == moved(s)


async def test_interrupted_compensation_is_finished_by_recovery(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, saga_lease=LEASE, sweep_interval=SWEEP) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]
        faults.arm("transfer.before_update_owner")
        faults.arm("transfer.compensate_move_credits")  # the reversal itself fails at first
        status, body = await both_confirm_last_faulted(c, s, tid)
        assert status == 500, body
        record = await c.runtime().runner.get(tid)
        assert record is not None and record.status == "COMPENSATING"
        assert await balances(c, seller, buyer) == moved(s)  # mid-way: not yet given back
        faults.disarm()
        await lapse_leases(c)
        record = await saga_status(c, tid, "FAILED")
        assert record is not None and record.status == "FAILED"
        assert (await transfer_record(c, tid))["status"] == "FAILED"
        assert await balances(c, seller, buyer) == untouched(s)
        assert (await owner(c, seat_id))[0] == seller["user_id"]


async def disputed(c: Cluster, s: dict[str, Any]) -> str:
    tid = await complete_transfer(c, s)
    status, _ = await c.call(
        "POST",
        "/api/transfer/dispute",
        token=s["buyer"]["token"],
        json_body={"transfer_id": tid, "reason": "wrong seat"},
    )
    assert status == 200
    return tid


async def reverse(c: Cluster, s: dict[str, Any], tid: str) -> tuple[int, Any]:
    return await c.call(
        "POST", "/api/transfer/reverse", token=s["admin"]["token"], json_body={"transfer_id": tid}
    )


@pytest.mark.parametrize("point", ["before_return_seat", "after_return_seat"])
async def test_fault_in_reverse_before_credits_leaves_it_disputed(
    tmp_path: Path, point: str
) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        tid = await disputed(c, s)
        faults.arm(f"transfer_reverse.{point}")
        status, body = await reverse(c, s, tid)
        assert (status, body["error_code"]) == (500, "INTERNAL_ERROR"), body
        faults.disarm()
        assert (await transfer_record(c, tid))["status"] == "DISPUTED"
        assert (await owner(c, s["seat_id"]))[0] == s["buyer"]["user_id"]
        assert await balances(c, s["seller"], s["buyer"]) == moved(s)
        status, body = await reverse(c, s, tid)  # the admin tries again
        assert status == 200 and body["data"]["status"] == "REVERSED", body
        assert (await owner(c, s["seat_id"]))[0] == s["seller"]["user_id"]
        assert await balances(c, s["seller"], s["buyer"]) == untouched(s)


@pytest.mark.parametrize("point", ["after_return_credits", "before_mark_reversed"])
async def test_fault_in_reverse_after_credits_finishes_forward(tmp_path: Path, point: str) -> None:
    async with running_cluster(tmp_path, saga_lease=LEASE, sweep_interval=SWEEP) as c:
        s = await sold_seat(c)
        tid = await disputed(c, s)
        faults.arm(f"transfer_reverse.{point}")
        status, body = await reverse(c, s, tid)
        assert (status, body["error_code"]) == (503, "SERVICE_UNAVAILABLE"), body
        faults.disarm()
        await lapse_leases(c)
        for _ in range(100):
            if (await transfer_record(c, tid))["status"] == "REVERSED":
                break
            await asyncio.sleep(0.1)
        assert (await transfer_record(c, tid))["status"] == "REVERSED"
        assert (await owner(c, s["seat_id"]))[0] == s["seller"]["user_id"]
        assert await balances(c, s["seller"], s["buyer"]) == untouched(s)


async def test_reverse_when_the_seller_spent_the_credits_gives_the_seat_back(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c, seats=12)
        tid = await complete_transfer(c, s)
        seller = s["seller"]
        # The seller spends everything on other seats (PRICE each) before the dispute opens
        # (once it is open, the disputed amount is held: tests/orchestrator/test_money_out.py).
        spend = (SELLER_START - PRICE + AMOUNT) // PRICE
        for i in range(spend):
            await buy(c, s["event"]["seat_ids"][1 + i], seller)
        status, _ = await c.call(
            "POST",
            "/api/transfer/dispute",
            token=s["buyer"]["token"],
            json_body={"transfer_id": tid, "reason": "wrong seat"},
        )
        assert status == 200
        left = [SELLER_START - PRICE + AMOUNT - spend * PRICE, BUYER_START - AMOUNT]
        assert left[0] < AMOUNT
        status, body = await reverse(c, s, tid)
        assert (status, body["error_code"]) == (402, "INSUFFICIENT_CREDITS"), body
        assert (await transfer_record(c, tid))["status"] == "DISPUTED"
        assert (await owner(c, s["seat_id"]))[:2] == (s["buyer"]["user_id"], "SOLD")
        assert await balances(c, seller, s["buyer"]) == left


async def test_request_dying_after_the_second_consent_is_completed_by_recovery(
    tmp_path: Path,
) -> None:
    """The buyer's confirm lands at orders, then the request dies before completion starts:
    recovery completes the transfer by itself (nobody has to confirm again)."""
    async with running_cluster(tmp_path, saga_lease=LEASE, sweep_interval=SWEEP) as c:
        s = await sold_seat(c)
        status, body = await initiate(c, s["seller"], s["seat_id"], s["buyer"]["email"])
        tid = body["data"]["transfer_id"]
        status, body = await confirm(c, s["seller"], tid, code_for(c, s["seller"]["user_id"], tid))
        assert status == 200 and body["data"]["status"] == "PENDING_OTP", body
        faults.arm("transfer.after_confirm_party")
        status, body = await confirm(c, s["buyer"], tid, code_for(c, s["buyer"]["user_id"], tid))
        assert status == 500, body
        faults.disarm()
        await lapse_leases(c)
        record = await saga_status(c, tid, "COMPLETED")
        assert record is not None and record.status == "COMPLETED"
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"
        assert (await owner(c, s["seat_id"]))[0] == s["buyer"]["user_id"]
        assert await balances(c, s["seller"], s["buyer"]) == [
            SELLER_START - PRICE + AMOUNT,
            BUYER_START - AMOUNT,
        ]
