"""What the attendee app reads (api-contract "Additions (turn 2)"): /api/me, the caller's orders,
transfers and credit history, and a checked-in ticket's time and gate — on SQLite and on the real
PostgreSQL, through real HTTP and gRPC between the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cluster import running_cluster
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres
from purchase_support import PRICE
from transfer_support import (
    AMOUNT,
    BUYER_START,
    SELLER_START,
    code_for,
    complete_transfer,
    confirm,
    initiate,
)
from transfer_support import sold_seat as sold_seat_
from verify_support import buy, gate_verify, make_event, qr

SERVICES = ("inventory", "users", "orders", "events", "orchestrator")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None: the embedded SQLite files; else a fresh PostgreSQL prefix, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    prefix = fresh_postgres_prefix()
    try:
        yield prefix
    finally:
        await drop_prefix_databases(prefix, SERVICES)


OWN_CALLS = ("/api/me", "/api/orders", "/api/transfers", "/api/credits/history")


async def test_every_own_call_needs_a_token(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        for path in OWN_CALLS:
            status, body = await c.call("GET", path)
            assert (status, body["error_code"]) == (401, "UNAUTHORIZED"), path
            status, body = await c.call("GET", path, token="forged.token.here")
            assert (status, body["error_code"]) == (401, "UNAUTHORIZED"), path


async def test_bad_query_parameters_are_400_naming_them(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        user = await c.make_user()
        for path, field in (
            ("/api/orders?page=0", "page"),
            ("/api/orders?per_page=1000", "per_page"),
            ("/api/credits/history?page=abc", "page"),
            ("/api/transfers?role=thief", "role"),
            ("/api/transfers?status=LOST", "status"),
        ):
            status, body = await c.call("GET", path, token=user["token"])
            assert (status, body["error_code"]) == (400, "VALIDATION_ERROR"), (path, body)
            assert body["details"]["field"] == field, body


async def test_me_orders_and_credit_history(tmp_path: Path, database_url: str | None) -> None:
    async with running_cluster(tmp_path, database_url=database_url) as c:
        event = await make_event(c, seats=3)
        buyer = await c.make_user(credits=1000, flagged=True)
        other = await c.make_user(credits=1000)
        status, body = await c.call("GET", "/api/me", token=buyer["token"])
        assert status == 200, body
        me = body["data"]
        assert me["user_id"] == buyer["user_id"] and me["email"] == buyer["email"]
        assert (me["role"], me["flagged"], me["verified"]) == ("customer", True, True)
        assert me["credit_balance"] == 1000
        assert "password_hash" not in me and "password" not in me

        await buy(c, event["seat_ids"][0], other)  # someone else's order: never in my list
        status, body = await c.call(
            "POST",
            "/api/reserve",
            token=buyer["token"],
            json_body={"seat_id": event["seat_ids"][1]},
        )
        assert status == 200, body
        # flagged: the pay step needs an OTP, so this order stays PENDING
        pending_id = body["data"]["order_id"]
        status, body = await c.call(
            "POST", "/api/pay", token=buyer["token"], json_body={"order_id": pending_id}
        )
        assert (status, body["error_code"]) == (428, "OTP_REQUIRED"), body
        code = c.otp_codes(user_id=buyer["user_id"], purpose="purchase")[-1]
        status, body = await c.call(
            "POST",
            "/api/verify-otp",
            token=buyer["token"],
            json_body={"context": "purchase", "reference_id": pending_id, "otp_code": code},
        )
        assert status == 200, body
        status, body = await c.call(
            "POST", "/api/pay", token=buyer["token"], json_body={"order_id": pending_id}
        )
        assert status == 200, body

        status, body = await c.call("GET", "/api/orders", token=buyer["token"])
        assert status == 200, body
        orders = body["data"]
        assert [o["order_id"] for o in orders] == [pending_id]
        order = orders[0]
        assert order["status"] == "CONFIRMED" and order["credits_charged"] == PRICE
        assert (order["row"], order["number"]) == ("A", 2)
        assert order["event"]["event_id"] == event["event_id"]
        assert order["event"]["name"].startswith("Show ")
        assert body["pagination"]["total"] == 1
        assert "user_id" not in order  # an order list names no account

        status, body = await c.call("GET", "/api/me", token=buyer["token"])
        assert body["data"]["credit_balance"] == 1000 - PRICE

        status, body = await c.call("GET", "/api/credits/history?per_page=1", token=buyer["token"])
        assert status == 200, body
        assert body["pagination"] == {"page": 1, "per_page": 1, "total": 2, "total_pages": 2}
        newest = body["data"][0]
        assert (newest["kind"], newest["amount"], newest["balance_after"]) == (
            "PURCHASE",
            -PRICE,
            1000 - PRICE,
        )
        status, body = await c.call(
            "GET", "/api/credits/history?page=2&per_page=1", token=buyer["token"]
        )
        assert [(e["kind"], e["amount"]) for e in body["data"]] == [("GRANT", 1000)]
        assert set(body["data"][0]) == {
            "entry_id",
            "amount",
            "kind",
            "reference_id",
            "balance_after",
            "created_at",
        }


async def test_transfers_list_by_role_with_emails_and_consent(
    tmp_path: Path, database_url: str | None
) -> None:
    async with running_cluster(tmp_path, database_url=database_url) as c:
        s = await sold_seat_(c)
        seller, buyer = s["seller"], s["buyer"]
        stranger = await c.make_user()
        status, body = await initiate(c, seller, s["seat_id"], buyer["email"])
        assert status == 201, body
        tid = body["data"]["transfer_id"]

        status, body = await c.call("GET", "/api/transfers?role=buyer", token=buyer["token"])
        assert status == 200, body
        [offered] = body["data"]
        assert offered["transfer_id"] == tid and offered["status"] == "PENDING_OTP"
        assert (offered["seller_email"], offered["buyer_email"]) == (
            seller["email"],
            buyer["email"],
        )
        assert (offered["role"], offered["i_confirmed"]) == ("buyer", False)
        assert offered["credits_amount"] == AMOUNT
        assert offered["event"]["event_id"] == s["event"]["event_id"]
        assert (offered["row"], offered["number"]) == ("A", 1)
        assert not any(k.endswith("user_id") for k in offered)  # e-mails, not account ids

        # the seller sees it as seller only; the buyer has none as seller; strangers see nothing
        _, body = await c.call("GET", "/api/transfers?role=seller", token=seller["token"])
        assert [t["transfer_id"] for t in body["data"]] == [tid]
        _, body = await c.call("GET", "/api/transfers?role=seller", token=buyer["token"])
        assert body["data"] == []
        _, body = await c.call("GET", "/api/transfers", token=stranger["token"])
        assert body["data"] == [] and body["pagination"]["total"] == 0

        status, body = await confirm(c, seller, tid, code_for(c, seller["user_id"], tid))
        assert status == 200, body
        _, body = await c.call("GET", "/api/transfers", token=seller["token"])
        assert (body["data"][0]["role"], body["data"][0]["i_confirmed"]) == ("seller", True)
        _, body = await c.call("GET", "/api/transfers", token=buyer["token"])
        assert body["data"][0]["i_confirmed"] is False  # the other party's consent is not mine
        _, body = await c.call("GET", "/api/transfers?status=COMPLETED", token=buyer["token"])
        assert body["data"] == []


async def test_checked_in_ticket_says_when_and_at_which_gate(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        buyer = await buy(c, event["seat_ids"][0])
        await buy(c, event["seat_ids"][1], buyer)
        status, body = await c.call(
            "POST",
            "/api/admin/gates",
            token=event["admin"]["token"],
            json_body={"hall_id": "HALL-A", "name": "Gate 1"},
        )
        gate = body["data"]
        status, body = await gate_verify(c, gate, await qr(c, buyer["token"], event["seat_ids"][0]))
        assert body["data"]["result"] == "SUCCESS", body
        status, body = await c.call("GET", "/api/tickets", token=buyer["token"])
        assert status == 200, body
        tickets = {t["seat_id"]: t for t in body["data"]}
        used, unused = tickets[event["seat_ids"][0]], tickets[event["seat_ids"][1]]
        assert used["status"] == "CHECKED_IN" and used["checked_in_at"]
        assert used["checked_in_gate"] == {"gate_id": gate["gate_id"], "name": "Gate 1"}
        assert unused["status"] == "SOLD"
        assert unused["checked_in_at"] is None and unused["checked_in_gate"] is None


async def test_a_transferred_ticket_leaves_the_sellers_orders_but_not_history(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat_(c)
        await complete_transfer(c, s)
        _, body = await c.call("GET", "/api/tickets", token=s["seller"]["token"])
        assert body["data"] == []
        # the seller's purchase stays in their orders: it happened
        _, body = await c.call("GET", "/api/orders", token=s["seller"]["token"])
        assert [o["seat_id"] for o in body["data"]] == [s["seat_id"]]
        _, body = await c.call("GET", "/api/credits/history", token=s["seller"]["token"])
        kinds = [e["kind"] for e in body["data"]]
        assert kinds[0] == "TRANSFER_IN" and "PURCHASE" in kinds
        _, body = await c.call("GET", "/api/me", token=s["seller"]["token"])
        assert body["data"]["credit_balance"] == SELLER_START - PRICE + AMOUNT
        _, body = await c.call("GET", "/api/me", token=s["buyer"]["token"])
        assert body["data"]["credit_balance"] == BUYER_START - AMOUNT
        _, body = await c.call("GET", "/api/transfers", token=s["buyer"]["token"])
        assert body["data"][0]["status"] == "COMPLETED"
