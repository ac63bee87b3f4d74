"""Malformed requests on every route: a 400 naming the field, and not one row written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.users.conftest import HEADERS, AppFactory, call, register, row_counts

U = "6f1c0f5e-4d4f-4b9f-9a59-2f6a4b6b7c11"
HUGE = "x" * 20_000

# (route, body, the field the answer must name)
BAD_BODIES: list[tuple[str, Any, str]] = [
    ("/users", {"password": "long enough"}, "email"),
    ("/users", {"email": "not-an-email", "password": "long enough"}, "email"),
    ("/users", {"email": HUGE + "@example.com", "password": "long enough"}, "email"),
    ("/users", {"email": "a@example.com", "password": "short"}, "password"),
    ("/users", {"email": "a@example.com", "password": "p" * 129}, "password"),
    ("/users", {"email": "a@example.com", "password": "long enough", "phone": "call me"}, "phone"),
    ("/users", {"email": "a@example.com", "password": "long enough", "phone": "+1" * 20}, "phone"),
    ("/users", {"email": "a@example.com", "password": "long enough", "role": "god"}, "role"),
    ("/users", {"email": "a@example.com", "password": "long enough", "credits": "5"}, "credits"),
    ("/users", {"email": "a@example.com", "password": "long enough", "credits": -1}, "credits"),
    (
        "/users",
        {"email": "a@example.com", "password": "long enough", "verified": "yes"},
        "verified",
    ),
    ("/users", {"email": "a@example.com", "password": "long enough", "extra": 1}, "extra"),
    ("/auth/verify-registration", {"user_id": "nope", "otp_code": "123456"}, "user_id"),
    ("/auth/verify-registration", {"user_id": U, "otp_code": 123456}, "otp_code"),
    ("/auth/verify-registration", {"user_id": U, "otp_code": "12345a"}, "otp_code"),
    ("/auth/login", {"email": "a@example.com"}, "password"),
    ("/auth/login", {"email": "a@example.com", "password": HUGE}, "password"),
    ("/auth/refresh", {}, "refresh_token"),
    ("/auth/refresh", {"refresh_token": HUGE}, "refresh_token"),
    ("/auth/logout", {"token": 5}, "token"),
    ("/auth/introspect", {"token": ""}, "token"),
    (
        "/credits/entries",
        {"user_id": U, "amount": 0, "kind": "GRANT", "idempotency_key": "k"},
        "amount",
    ),
    (
        "/credits/entries",
        {"user_id": U, "amount": 1.5, "kind": "GRANT", "idempotency_key": "k"},
        "amount",
    ),
    (
        "/credits/entries",
        {"user_id": U, "amount": 10**15, "kind": "GRANT", "idempotency_key": "k"},
        "amount",
    ),
    (
        "/credits/entries",
        {"user_id": U, "amount": 5, "kind": "GIFT", "idempotency_key": "k"},
        "kind",
    ),
    (
        "/credits/entries",
        {"user_id": U, "amount": 5, "kind": "GRANT", "idempotency_key": HUGE},
        "idempotency_key",
    ),
    (
        "/credits/entries",
        {"user_id": "123", "amount": 5, "kind": "GRANT", "idempotency_key": "k"},
        "user_id",
    ),
    ("/credits/entries", {"amount": 5, "kind": "GRANT", "idempotency_key": "k"}, "user_id"),
    (
        "/credits/transfer",
        {"from_user_id": U, "to_user_id": U, "amount": -3, "idempotency_key": "k"},
        "amount",
    ),
    (
        "/credits/transfer",
        {"from_user_id": U, "to_user_id": "x", "amount": 3, "idempotency_key": "k"},
        "to_user_id",
    ),
    ("/otp/challenges", {"user_id": U, "purpose": "fun", "reference_id": U}, "purpose"),
    (
        "/otp/challenges",
        {"user_id": U, "purpose": "purchase", "reference_id": "order-1"},
        "reference_id",
    ),
    ("/otp/verify", {"user_id": U, "purpose": "purchase", "reference_id": U}, "code"),
    ("/otp/resend", {"user_id": U, "purpose": "purchase"}, "reference_id"),
]

ROUTES = sorted({route for route, _, _ in BAD_BODIES})


@pytest.fixture
async def seeded(make_client: AppFactory) -> Any:
    client = await make_client()
    user = await register(client, "val@example.com", verified=True, credits=10)
    return client, user


async def test_bad_bodies_name_the_field_and_write_nothing(seeded: Any) -> None:
    client, _ = seeded
    before = await row_counts(client)
    for route, body, field in BAD_BODIES:
        status, answer = await call(client, "POST", route, body)
        assert status == 400, (route, body, answer)
        assert answer["success"] is False
        assert field in answer["message"], (route, answer)
        assert answer["error_code"] in ("VALIDATION_ERROR", "INVALID_UUID")
    assert await row_counts(client) == before


@pytest.mark.parametrize("route", ROUTES)
async def test_non_json_and_non_object_bodies(seeded: Any, route: str) -> None:
    client, _ = seeded
    before = await row_counts(client)
    for raw in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"):
        resp = await client.post(
            route, data=raw, headers={**HEADERS, "Content-Type": "application/json"}
        )
        answer = await resp.json()
        assert resp.status == 400, (route, raw, answer)
        assert answer["error_code"] == "VALIDATION_ERROR"
    assert await row_counts(client) == before


async def test_bad_path_and_query_values(seeded: Any) -> None:
    client, user = seeded
    before = await row_counts(client)
    checks: list[tuple[str, str, Any, dict[str, str] | None, str]] = [
        ("GET", "/users/not-a-uuid", None, None, "user_id"),
        ("PATCH", "/users/not-a-uuid", {"is_flagged": True}, None, "user_id"),
        ("PATCH", f"/users/{user['user_id']}", {"is_flagged": "yes"}, None, "is_flagged"),
        ("PATCH", f"/users/{user['user_id']}", {"role": "root"}, None, "role"),
        ("GET", "/credits/not-a-uuid/balance", None, None, "user_id"),
        ("GET", "/users", None, {"email": "nope"}, "email"),
        ("GET", "/users", None, {}, "email"),
        (
            "GET",
            "/otp/status",
            None,
            {"user_id": "x", "purpose": "purchase", "reference_id": U},
            "user_id",
        ),
        (
            "GET",
            "/otp/status",
            None,
            {"user_id": U, "purpose": "nap", "reference_id": U},
            "purpose",
        ),
    ]
    for method, path, body, params, field in checks:
        status, answer = await call(client, method, path, body, params=params)
        assert status == 400, (method, path, answer)
        assert field in answer["message"], (path, answer)
    assert await row_counts(client) == before
    _, answer = await call(client, "GET", f"/users/{user['user_id']}")
    assert answer["data"]["is_flagged"] is False and answer["data"]["role"] == "customer"


async def test_unknown_ids_write_nothing(seeded: Any) -> None:
    client, _ = seeded
    before = await row_counts(client)
    other = str(uuid.uuid4())
    status, answer = await call(
        client,
        "POST",
        "/credits/entries",
        {"user_id": other, "amount": 5, "kind": "GRANT", "idempotency_key": "ghost"},
    )
    assert (status, answer["error_code"]) == (404, "USER_NOT_FOUND")
    status, answer = await call(
        client, "POST", "/otp/resend", {"user_id": other, "purpose": "purchase", "reference_id": U}
    )
    assert (status, answer["error_code"]) == (404, "USER_NOT_FOUND")
    assert await row_counts(client) == before
