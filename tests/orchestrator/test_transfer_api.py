"""Transfer (saga 2) through the public API: the happy path with two users (balances, tickets, old
QR → TRANSFERRED, new QR → SUCCESS), each validation refusal changing nothing, two-party consent
with each party's own code, three wrong codes, a buyer whose balance fell, expiry, reads, dispute and
reverse, and Idempotency-Key."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cluster import Cluster, running_cluster
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
    saga_status,
    sold_seat,
    transfer_record,
    wrong_code,
)
from verify_support import add_gate, buy, entry_logs, gate_verify, qr


async def tickets(c: Cluster, user: dict[str, Any]) -> list[str]:
    status, body = await c.call("GET", "/api/tickets", token=user["token"])
    assert status == 200, body
    return [t["seat_id"] for t in body["data"]]


async def test_happy_path_moves_credits_and_seat_and_kills_old_qr(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        gate = await add_gate(c, s["admin"]["token"])
        old_qr = await qr(c, seller["token"], seat_id)
        _, _, epoch_before = await owner(c, seat_id)

        status, body = await initiate(c, seller, seat_id, buyer["email"])
        assert status == 201, body
        tid = body["data"]["transfer_id"]
        assert body["data"]["status"] == "PENDING_OTP"
        assert (await transfer_record(c, tid))["status"] == "PENDING_OTP"

        # The seller confirms: still waiting for the buyer, nothing moved yet.
        status, body = await confirm(c, seller, tid, code_for(c, seller["user_id"], tid))
        assert status == 200, body
        assert body["data"]["status"] == "PENDING_OTP" and body["data"]["seller_confirmed"]
        assert await balances(c, seller, buyer) == [SELLER_START - PRICE, BUYER_START]
        assert (await owner(c, seat_id))[0] == seller["user_id"]

        status, body = await confirm(c, buyer, tid, code_for(c, buyer["user_id"], tid))
        assert status == 200, body
        assert body["data"] == {
            "transfer_id": tid,
            "status": "COMPLETED",
            "seat_id": seat_id,
            "new_owner_user_id": buyer["user_id"],
            "credits_amount": AMOUNT,
        }
        assert await balances(c, seller, buyer) == [
            SELLER_START - PRICE + AMOUNT,
            BUYER_START - AMOUNT,
        ]
        new_owner, seat_status, epoch_after = await owner(c, seat_id)
        assert (new_owner, seat_status) == (buyer["user_id"], "SOLD")
        assert epoch_after == epoch_before + 1
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"
        assert await tickets(c, seller) == []
        assert await tickets(c, buyer) == [seat_id]

        # The seller's last token is dead; the buyer's new one admits.
        status, body = await gate_verify(c, gate, old_qr)
        assert status == 200 and body["data"]["result"] == "TRANSFERRED", body
        status, body = await gate_verify(c, gate, await qr(c, buyer["token"], seat_id))
        assert status == 200 and body["data"]["result"] == "SUCCESS", body
        # The seller can no longer fetch a QR for it.
        status, body = await c.call("GET", f"/api/tickets/{seat_id}/qr", token=seller["token"])
        assert (status, body["error_code"]) == (403, "NOT_SEAT_OWNER")


async def test_each_validation_failure_has_its_code_and_changes_nothing(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c, seats=3)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        unsold = s["event"]["seat_ids"][1]
        stranger = await c.make_user(credits=5000)
        # A seat with a live transfer (to someone else), for TRANSFER_IN_PROGRESS.
        other = await sold_seat(c)
        status, body = await initiate(c, other["seller"], other["seat_id"], stranger["email"])
        assert status == 201, body

        before = await c.row_counts()
        cases = [
            (seller, seat_id, "nobody@example.com", AMOUNT, 404, "USER_NOT_FOUND"),
            (seller, seat_id, seller["email"], AMOUNT, 400, "SELF_TRANSFER"),
            (stranger, seat_id, buyer["email"], AMOUNT, 403, "NOT_SEAT_OWNER"),
            (seller, unsold, buyer["email"], AMOUNT, 403, "NOT_SEAT_OWNER"),
            (seller, str(uuid.uuid4()), buyer["email"], AMOUNT, 404, "SEAT_NOT_FOUND"),
            (
                other["seller"],
                other["seat_id"],
                buyer["email"],
                AMOUNT,
                409,
                "TRANSFER_IN_PROGRESS",
            ),
        ]
        for who, seat, email, amount, want_status, want_code in cases:
            status, body = await initiate(c, who, seat, email, amount)
            assert (status, body.get("error_code")) == (want_status, want_code), (want_code, body)
        # Malformed bodies: 400 naming the field.
        for bad, field in [
            ({"seat_id": "x", "buyer_email": buyer["email"], "credits_amount": 1}, "seat_id"),
            ({"seat_id": seat_id, "buyer_email": "nope", "credits_amount": 1}, "buyer_email"),
            ({"seat_id": seat_id, "buyer_email": buyer["email"], "credits_amount": -5}, "credits"),
            ({"seat_id": seat_id, "buyer_email": buyer["email"], "credits_amount": "5"}, "credits"),
        ]:
            status, body = await c.call(
                "POST", "/api/transfer/initiate", token=seller["token"], json_body=bad
            )
            assert status == 400 and field in body["message"], body
        status, _ = await c.call("POST", "/api/transfer/initiate", json_body={})
        assert status == 401
        assert await c.row_counts() == before

        # A checked-in ticket cannot be transferred: SEAT_UNAVAILABLE, nothing written.
        gate = await add_gate(c, s["admin"]["token"])
        scan_id = str(uuid.uuid4())
        status, body = await gate_verify(c, gate, await qr(c, seller["token"], seat_id), scan_id)
        assert body["data"]["result"] == "SUCCESS"
        assert len(await entry_logs(c, gate, scan_id)) == 1  # written in the background
        before = await c.row_counts()
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        assert (status, body["error_code"]) == (409, "SEAT_UNAVAILABLE"), body
        assert await c.row_counts() == before


async def test_a_party_cannot_use_the_other_partys_code(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]
        seller_code = code_for(c, seller["user_id"], tid)
        buyer_code = code_for(c, buyer["user_id"], tid)
        # The buyer holding the seller's code (it was handed over) cannot confirm with it.
        if seller_code != buyer_code:  # two independent random codes; equal 1 in a million
            status, body = await confirm(c, buyer, tid, seller_code)
            assert (status, body["error_code"]) == (401, "OTP_INVALID"), body
            assert body["details"]["attempts_left"] == 2
        # Nor can a stranger confirm at all.
        stranger = await c.make_user()
        status, body = await confirm(c, stranger, tid, buyer_code)
        assert (status, body["error_code"]) == (403, "FORBIDDEN")
        # The seller confirming twice is not the buyer's consent.
        for _ in range(2):
            status, body = await confirm(c, seller, tid, seller_code)
            assert status == 200 and body["data"]["status"] == "PENDING_OTP", body
        record = await transfer_record(c, tid)
        assert (record["seller_confirmed"], record["buyer_confirmed"]) == (True, False)
        assert (await owner(c, seat_id))[0] == seller["user_id"]
        status, body = await confirm(c, buyer, tid, buyer_code)
        assert body["data"]["status"] == "COMPLETED", body


async def test_three_wrong_codes_fail_the_transfer_and_move_nothing(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]
        status, _ = await confirm(c, seller, tid, code_for(c, seller["user_id"], tid))
        assert status == 200
        bad = wrong_code(code_for(c, buyer["user_id"], tid))
        for left in (2, 1):
            status, body = await confirm(c, buyer, tid, bad)
            assert (status, body["error_code"]) == (401, "OTP_INVALID")
            assert body["details"]["attempts_left"] == left
        status, body = await confirm(c, buyer, tid, bad)
        assert (status, body["error_code"]) == (429, "OTP_MAX_RETRIES"), body
        assert (await transfer_record(c, tid))["status"] == "FAILED"
        assert (await saga_status(c, tid, "FAILED")).status == "FAILED"
        assert await balances(c, seller, buyer) == [SELLER_START - PRICE, BUYER_START]
        assert (await owner(c, seat_id))[0] == seller["user_id"]
        # Even the right code cannot revive it; the seat is free for a new transfer.
        status, body = await confirm(c, buyer, tid, code_for(c, buyer["user_id"], tid))
        assert (status, body["error_code"]) == (409, "TRANSFER_INVALID_STATE")
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        assert status == 201, body


async def test_buyer_whose_balance_fell_gets_402_and_the_transfer_fails(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c, seats=3)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"], BUYER_START)
        tid = body["data"]["transfer_id"]
        # The buyer spends credits on another seat meanwhile.
        await buy(c, s["event"]["seat_ids"][1], buyer)
        await confirm(c, seller, tid, code_for(c, seller["user_id"], tid))
        status, body = await confirm(c, buyer, tid, code_for(c, buyer["user_id"], tid))
        assert (status, body["error_code"]) == (402, "INSUFFICIENT_CREDITS"), body
        assert "details" not in body  # neither party learns the buyer's balance or id
        assert (await transfer_record(c, tid))["status"] == "FAILED"
        assert await balances(c, seller, buyer) == [SELLER_START - PRICE, BUYER_START - PRICE]
        assert (await owner(c, seat_id))[0] == seller["user_id"]


async def test_a_stuck_transfer_expires_and_ends_failed(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, transfer_ttl=1, sweep_interval=0.2) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]
        await confirm(c, seller, tid, code_for(c, seller["user_id"], tid))
        record = await saga_status(c, tid, "FAILED", wait=10)
        assert record.status == "FAILED" and record.error_code == "TRANSFER_EXPIRED"
        assert (await transfer_record(c, tid))["status"] == "FAILED"
        status, body = await confirm(c, buyer, tid, code_for(c, buyer["user_id"], tid))
        assert (status, body["error_code"]) == (409, "TRANSFER_INVALID_STATE")
        assert (await owner(c, seat_id))[0] == seller["user_id"]
        assert await balances(c, seller, buyer) == [SELLER_START - PRICE, BUYER_START]


async def test_read_by_party_or_admin_only(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        status, body = await initiate(c, s["seller"], s["seat_id"], s["buyer"]["email"])
        tid = body["data"]["transfer_id"]
        for who in (s["seller"], s["buyer"], s["admin"]):
            status, body = await c.call("GET", f"/api/transfers/{tid}", token=who["token"])
            assert status == 200 and body["data"]["status"] == "PENDING_OTP", body
            assert body["data"]["credits_amount"] == AMOUNT
        stranger = await c.make_user()
        status, body = await c.call("GET", f"/api/transfers/{tid}", token=stranger["token"])
        assert (status, body["error_code"]) == (403, "FORBIDDEN")
        missing = str(uuid.uuid4())
        status, body = await c.call("GET", f"/api/transfers/{missing}", token=s["admin"]["token"])
        assert (status, body["error_code"]) == (404, "TRANSFER_NOT_FOUND")
        status, body = await c.call("GET", "/api/transfers/nope", token=s["admin"]["token"])
        assert status == 400 and "transfer_id" in body["message"]
        status, body = await confirm(c, s["buyer"], missing, "123456")
        assert (status, body["error_code"]) == (404, "TRANSFER_NOT_FOUND")


async def test_dispute_and_reverse(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id, admin = s["seller"], s["buyer"], s["seat_id"], s["admin"]
        status, body = await initiate(c, seller, seat_id, buyer["email"])
        tid = body["data"]["transfer_id"]

        async def dispute(who: dict[str, Any]) -> tuple[int, Any]:
            return await c.call(
                "POST",
                "/api/transfer/dispute",
                token=who["token"],
                json_body={"transfer_id": tid, "reason": "never got the money"},
            )

        async def reverse(who: dict[str, Any]) -> tuple[int, Any]:
            return await c.call(
                "POST", "/api/transfer/reverse", token=who["token"], json_body={"transfer_id": tid}
            )

        # Not COMPLETED yet: neither dispute nor reverse.
        status, body = await dispute(seller)
        assert (status, body["error_code"]) == (409, "TRANSFER_INVALID_STATE")
        for party in (seller, buyer):
            await confirm(c, party, tid, code_for(c, party["user_id"], tid))
        assert (await transfer_record(c, tid))["status"] == "COMPLETED"
        status, body = await reverse(admin)
        assert (status, body["error_code"]) == (409, "TRANSFER_INVALID_STATE")
        stranger = await c.make_user()
        status, body = await dispute(stranger)
        assert (status, body["error_code"]) == (403, "FORBIDDEN")

        status, body = await dispute(seller)
        assert status == 200 and body["data"]["status"] == "DISPUTED", body
        assert body["data"]["dispute_reason"] == "never got the money"
        status, body = await reverse(seller)  # a party is not an admin
        assert (status, body["error_code"]) == (403, "FORBIDDEN")
        _, _, epoch = await owner(c, seat_id)

        status, body = await reverse(admin)
        assert status == 200, body
        assert body["data"] == {
            "transfer_id": tid,
            "status": "REVERSED",
            "restored_owner_user_id": seller["user_id"],
            "credits_returned": AMOUNT,
        }
        assert (await transfer_record(c, tid))["status"] == "REVERSED"
        assert await owner(c, seat_id) == (seller["user_id"], "SOLD", epoch + 1)
        assert await balances(c, seller, buyer) == [SELLER_START - PRICE, BUYER_START]
        # Once is enough: a second reverse is refused and moves nothing.
        status, body = await reverse(admin)
        assert (status, body["error_code"]) == (409, "TRANSFER_INVALID_STATE")
        assert await balances(c, seller, buyer) == [SELLER_START - PRICE, BUYER_START]


async def test_reverse_refused_when_the_seat_moved_on_or_was_checked_in(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id, admin = s["seller"], s["buyer"], s["seat_id"], s["admin"]
        tid = await complete_transfer(c, s)
        status, _ = await c.call(
            "POST",
            "/api/transfer/dispute",
            token=buyer["token"],
            json_body={"transfer_id": tid, "reason": "seller lied"},
        )
        assert status == 200
        # The buyer goes in with the ticket before the admin gets to it.
        gate = await add_gate(c, admin["token"])
        status, body = await gate_verify(c, gate, await qr(c, buyer["token"], seat_id))
        assert body["data"]["result"] == "SUCCESS"
        status, body = await c.call(
            "POST", "/api/transfer/reverse", token=admin["token"], json_body={"transfer_id": tid}
        )
        assert (status, body["error_code"]) == (409, "SEAT_UNAVAILABLE"), body
        assert (await transfer_record(c, tid))["status"] == "DISPUTED"
        assert (await owner(c, seat_id))[:2] == (buyer["user_id"], "CHECKED_IN")
        assert await balances(c, seller, buyer) == [
            SELLER_START - PRICE + AMOUNT,
            BUYER_START - AMOUNT,
        ]


async def test_reverse_refused_when_the_seat_was_passed_on(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id, admin = s["seller"], s["buyer"], s["seat_id"], s["admin"]
        tid = await complete_transfer(c, s)
        third = await c.make_user(credits=BUYER_START)
        await complete_transfer(c, {**s, "seller": buyer, "buyer": third})
        status, _ = await c.call(
            "POST",
            "/api/transfer/dispute",
            token=seller["token"],
            json_body={"transfer_id": tid, "reason": "x"},
        )
        assert status == 200
        status, body = await c.call(
            "POST", "/api/transfer/reverse", token=admin["token"], json_body={"transfer_id": tid}
        )
        assert (status, body["error_code"]) == (409, "SEAT_UNAVAILABLE"), body
        assert (await owner(c, seat_id))[0] == third["user_id"]
        assert (await transfer_record(c, tid))["status"] == "DISPUTED"
        assert await balances(c, seller, buyer, third) == [
            SELLER_START - PRICE + AMOUNT,
            BUYER_START,
            BUYER_START - AMOUNT,
        ]


async def test_idempotency_key_repeats_the_first_answer(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, buyer, seat_id = s["seller"], s["buyer"], s["seat_id"]
        first = await initiate(
            c, seller, seat_id, buyer["email"], headers={"Idempotency-Key": "k1"}
        )
        again = await initiate(
            c, seller, seat_id, buyer["email"], headers={"Idempotency-Key": "k1"}
        )
        assert first[0] == 201 and again == first
        tid = first[1]["data"]["transfer_id"]
        listed = await c.backends.orders.call("GET", "/transfers", params={"seat_id": seat_id})
        assert [t["transfer_id"] for t in listed] == [tid]
        await confirm(c, seller, tid, code_for(c, seller["user_id"], tid))
        code = code_for(c, buyer["user_id"], tid)
        done = await confirm(c, buyer, tid, code, headers={"Idempotency-Key": "k2"})
        repeat = await confirm(c, buyer, tid, code, headers={"Idempotency-Key": "k2"})
        assert done[0] == 200 and repeat == done
        assert await balances(c, seller, buyer) == [
            SELLER_START - PRICE + AMOUNT,
            BUYER_START - AMOUNT,
        ]


async def test_malformed_bodies_name_the_field_and_write_nothing(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        seller, admin = s["seller"], s["admin"]
        good = str(uuid.uuid4())
        cases: list[tuple[str, dict[str, Any], object, str]] = [
            ("/api/transfer/confirm", seller, {"otp_code": "123456"}, "transfer_id"),
            ("/api/transfer/confirm", seller, {"transfer_id": "x", "otp_code": "1"}, "transfer_id"),
            (
                "/api/transfer/confirm",
                seller,
                {"transfer_id": good, "otp_code": 123456},
                "otp_code",
            ),
            ("/api/transfer/confirm", seller, {"transfer_id": good, "otp_code": "12ab56"}, "otp"),
            ("/api/transfer/dispute", seller, {"transfer_id": good}, "reason"),
            ("/api/transfer/dispute", seller, {"transfer_id": good, "reason": ""}, "reason"),
            ("/api/transfer/dispute", seller, {"transfer_id": good, "reason": "x" * 501}, "reason"),
            ("/api/transfer/reverse", admin, {"transfer_id": 5}, "transfer_id"),
            ("/api/transfer/reverse", admin, "not json", ""),
            ("/api/transfer/initiate", seller, [1, 2], ""),
        ]
        before = await c.row_counts()
        for path, who, bad, field in cases:
            if isinstance(bad, str):
                status, body = await c.call("POST", path, token=who["token"], data=bad)
            else:
                status, body = await c.call("POST", path, token=who["token"], json_body=bad)
            assert status == 400, (path, bad, body)
            assert field in body["message"], (path, bad, body)
        assert await c.row_counts() == before
