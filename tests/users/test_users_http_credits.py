"""The credit routes over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

from tests.users.conftest import AppFactory, call, register


async def test_100_concurrent_http_debits_exactly_37_succeed(make_client: AppFactory) -> None:
    client = await make_client()
    user = await register(client, verified=True, credits=37)

    async def debit(i: int) -> int:
        status, body = await call(
            client,
            "POST",
            "/credits/entries",
            {
                "user_id": user["user_id"],
                "amount": -1,
                "kind": "PURCHASE",
                "idempotency_key": f"d{i}",
            },
        )
        assert status in (200, 402), body
        return status

    statuses = await asyncio.gather(*(debit(i) for i in range(100)))
    assert statuses.count(200) == 37 and statuses.count(402) == 63
    status, body = await call(client, "GET", f"/credits/{user['user_id']}/balance")
    assert body["data"] == {"user_id": user["user_id"], "credit_balance": 0}
    _, body = await call(client, "GET", f"/users/{user['user_id']}")
    assert body["data"]["credit_balance"] == 0


async def test_entries_replay_conflict_and_lookup(make_client: AppFactory) -> None:
    client = await make_client()
    user = await register(client, verified=True, credits=100)
    entry = {
        "user_id": user["user_id"],
        "amount": -40,
        "kind": "PURCHASE",
        "idempotency_key": "saga-1:pay",
        "reference_id": "order-1",
    }
    results = await asyncio.gather(
        *(call(client, "POST", "/credits/entries", entry) for _ in range(10))
    )
    assert all(status == 200 for status, _ in results)
    assert [body["data"]["replayed"] for _, body in results].count(False) == 1
    assert {body["data"]["credit_balance"] for _, body in results} == {60}
    assert len({body["data"]["entry_id"] for _, body in results}) == 1

    status, body = await call(client, "POST", "/credits/entries", {**entry, "amount": -41})
    assert (status, body["error_code"]) == (409, "IDEMPOTENCY_CONFLICT")
    status, body = await call(client, "GET", "/credits/entries/saga-1:pay")
    assert status == 200 and body["data"]["amount"] == -40 and body["data"]["kind"] == "PURCHASE"
    slashed = {**entry, "amount": 1, "kind": "REFUND", "idempotency_key": "a/b:refund"}
    status, body = await call(client, "POST", "/credits/entries", slashed)
    assert status == 200 and body["data"]["credit_balance"] == 61
    status, body = await call(client, "GET", "/credits/entries/a%2Fb:refund")
    assert status == 200 and body["data"]["amount"] == 1, body
    status, body = await call(client, "GET", "/credits/entries/never-used")
    assert (status, body["error_code"]) == (404, "NOT_FOUND")

    status, body = await call(
        client, "POST", "/credits/entries", {**entry, "amount": -62, "idempotency_key": "big"}
    )
    assert (status, body["error_code"]) == (402, "INSUFFICIENT_CREDITS")
    assert body["details"]["current_balance"] == 61
    status, body = await call(client, "GET", f"/credits/{user['user_id']}/balance")
    assert body["data"]["credit_balance"] == 61


async def test_transfer_over_http(make_client: AppFactory) -> None:
    client = await make_client()
    buyer = await register(client, "buyer@example.com", verified=True, credits=80)
    seller = await register(client, "seller@example.com", verified=True)
    move = {
        "from_user_id": buyer["user_id"],
        "to_user_id": seller["user_id"],
        "amount": 30,
        "idempotency_key": "tr-1",
    }
    status, body = await call(client, "POST", "/credits/transfer", move)
    assert status == 200 and body["data"] == {
        "from_balance": 50,
        "to_balance": 30,
        "replayed": False,
    }
    status, body = await call(client, "POST", "/credits/transfer", move)
    assert body["data"] == {"from_balance": 50, "to_balance": 30, "replayed": True}
    status, body = await call(
        client, "POST", "/credits/transfer", {**move, "amount": 51, "idempotency_key": "tr-2"}
    )
    assert (status, body["error_code"]) == (402, "INSUFFICIENT_CREDITS")
    status, body = await call(
        client,
        "POST",
        "/credits/transfer",
        {**move, "to_user_id": buyer["user_id"], "idempotency_key": "tr-3"},
    )
    assert (status, body["error_code"]) == (400, "SELF_TRANSFER")
    status, body = await call(
        client,
        "POST",
        "/credits/transfer",
        {**move, "to_user_id": str(uuid.uuid4()), "idempotency_key": "tr-4"},
    )
    assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")
    for user, expected in ((buyer, 50), (seller, 30)):
        _, body = await call(client, "GET", f"/credits/{user['user_id']}/balance")
        assert body["data"]["credit_balance"] == expected
    status, body = await call(client, "GET", f"/credits/{uuid.uuid4()}/balance")
    assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")
