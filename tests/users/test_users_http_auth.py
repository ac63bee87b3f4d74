"""Accounts and login over real HTTP (aiohttp test client) on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

from central.config import Settings
from tests.users.conftest import HEADERS, AppFactory, FakeClock, call, last_code, register


async def test_register_verify_login_introspect(make_client: AppFactory, otp_file: Path) -> None:
    client = await make_client()
    user = await register(client, "Ann@Example.com", phone="+6591234567")
    assert user["email"] == "ann@example.com" and user["is_verified"] is False
    assert "password_hash" not in user and "password" not in user
    status, body = await call(
        client,
        "POST",
        "/auth/login",
        {"email": "ann@example.com", "password": "correct horse battery"},
    )
    assert (status, body["error_code"]) == (403, "UNVERIFIED_ACCOUNT")

    code = last_code(otp_file, user["user_id"])
    status, body = await call(
        client, "POST", "/auth/verify-registration", {"user_id": user["user_id"], "otp_code": code}
    )
    assert status == 200, body
    assert body["data"]["user"]["is_verified"] is True and body["data"]["token_type"] == "Bearer"

    status, body = await call(
        client,
        "POST",
        "/auth/login",
        {"email": "ANN@example.com", "password": "correct horse battery"},
    )
    assert status == 200, body
    data = body["data"]
    assert data["expires_in"] == 900 and data["token_type"] == "Bearer"
    assert data["user"] == {
        "user_id": user["user_id"],
        "email": "ann@example.com",
        "credit_balance": 0,
        "role": "customer",
    }
    status, body = await call(client, "POST", "/auth/introspect", {"token": data["access_token"]})
    assert status == 200, body
    assert body["data"]["user_id"] == user["user_id"]
    assert body["data"]["role"] == "customer" and body["data"]["is_flagged"] is False
    assert body["data"]["expires_at"].endswith("Z")

    # A refresh token is not an access token; it buys a new one.
    status, body = await call(client, "POST", "/auth/introspect", {"token": data["refresh_token"]})
    assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
    status, body = await call(
        client, "POST", "/auth/refresh", {"refresh_token": data["refresh_token"]}
    )
    assert status == 200 and body["data"]["expires_in"] == 900
    status, _ = await call(
        client, "POST", "/auth/introspect", {"token": body["data"]["access_token"]}
    )
    assert status == 200

    # The code is spent: verifying again is refused.
    status, body = await call(
        client, "POST", "/auth/verify-registration", {"user_id": user["user_id"], "otp_code": code}
    )
    assert (status, body["error_code"]) == (409, "ALREADY_VERIFIED")


async def test_expired_registration_code_then_resend(
    make_client: AppFactory, otp_file: Path, clock: FakeClock
) -> None:
    client = await make_client()
    user = await register(client)
    old = last_code(otp_file, user["user_id"])
    clock.advance(301)
    status, body = await call(
        client, "POST", "/auth/verify-registration", {"user_id": user["user_id"], "otp_code": old}
    )
    assert (status, body["error_code"]) == (410, "OTP_EXPIRED")
    target = {
        "user_id": user["user_id"],
        "purpose": "registration",
        "reference_id": user["user_id"],
    }
    status, body = await call(client, "POST", "/otp/resend", target)
    assert status == 200 and body["data"]["resends_left"] == 2
    new = last_code(otp_file, user["user_id"])
    if new != old:
        status, body = await call(
            client,
            "POST",
            "/auth/verify-registration",
            {"user_id": user["user_id"], "otp_code": old},
        )
        assert (status, body["error_code"]) == (401, "OTP_INVALID")
    status, body = await call(
        client, "POST", "/auth/verify-registration", {"user_id": user["user_id"], "otp_code": new}
    )
    assert status == 200, body


async def test_three_wrong_codes_over_http(make_client: AppFactory, otp_file: Path) -> None:
    client = await make_client()
    user = await register(client)
    code = last_code(otp_file, user["user_id"])
    bad = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = []
    for _ in range(3):
        status, body = await call(
            client,
            "POST",
            "/auth/verify-registration",
            {"user_id": user["user_id"], "otp_code": bad},
        )
        answers.append((status, body["error_code"], body.get("details")))
    assert answers == [
        (401, "OTP_INVALID", {"attempts_left": 2}),
        (401, "OTP_INVALID", {"attempts_left": 1}),
        (429, "OTP_MAX_RETRIES", None),
    ]
    status, body = await call(
        client, "POST", "/auth/verify-registration", {"user_id": user["user_id"], "otp_code": code}
    )
    assert (status, body["error_code"]) == (429, "OTP_MAX_RETRIES")


async def test_otp_routes_for_a_purchase(
    make_client: AppFactory, otp_file: Path, clock: FakeClock
) -> None:
    client = await make_client()
    user = await register(client, verified=True)
    order = str(uuid.uuid4())
    target = {"user_id": user["user_id"], "purpose": "purchase", "reference_id": order}
    query = {"user_id": user["user_id"], "purpose": "purchase", "reference_id": order}
    status, body = await call(client, "GET", "/otp/status", params=query)
    assert (status, body["error_code"]) == (404, "OTP_NOT_FOUND")
    status, body = await call(client, "POST", "/otp/challenges", target)
    assert status == 200 and body["data"]["expires_at"].endswith("Z")
    status, body = await call(client, "GET", "/otp/status", params=query)
    assert body["data"] == {
        "verified": False,
        "attempts_left": 3,
        "expires_at": body["data"]["expires_at"],
        "expired": False,
        "exhausted": False,
    }
    code = last_code(otp_file, user["user_id"], "purchase")
    status, body = await call(client, "POST", "/otp/verify", {**target, "code": code})
    assert status == 200 and body["data"] == {"verified": True}
    status, body = await call(client, "GET", "/otp/status", params=query)
    assert body["data"]["verified"] is True and body["data"]["expired"] is False

    # A second order: its status tells the caller when a new code is needed.
    other = {**query, "reference_id": str(uuid.uuid4())}
    await call(client, "POST", "/otp/challenges", other)
    code = last_code(otp_file, user["user_id"], "purchase")
    bad = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        await call(client, "POST", "/otp/verify", {**other, "code": bad})
    _, body = await call(client, "GET", "/otp/status", params=other)
    assert body["data"]["exhausted"] is True and body["data"]["attempts_left"] == 0
    third = {**query, "reference_id": str(uuid.uuid4())}
    await call(client, "POST", "/otp/challenges", third)
    clock.advance(301)
    _, body = await call(client, "GET", "/otp/status", params=third)
    assert body["data"]["expired"] is True and body["data"]["verified"] is False
    status, body = await call(
        client, "POST", "/otp/challenges", {**target, "user_id": str(uuid.uuid4())}
    )
    assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")


async def test_logout_revokes_for_another_process(
    make_client: AppFactory, settings: Settings
) -> None:
    """Two app instances on one database stand for two processes of the service."""
    first = await make_client()
    second = await make_client()
    await register(first, "bob@example.com", verified=True)
    status, body = await call(
        first,
        "POST",
        "/auth/login",
        {"email": "bob@example.com", "password": "correct horse battery"},
    )
    tokens = body["data"]
    status, _ = await call(second, "POST", "/auth/introspect", {"token": tokens["access_token"]})
    assert status == 200
    status, body = await call(first, "POST", "/auth/logout", {"token": tokens["access_token"]})
    assert status == 200 and body["data"] == {"revoked": True}
    status, body = await call(second, "POST", "/auth/introspect", {"token": tokens["access_token"]})
    assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
    # Logging out the refresh token stops refreshing everywhere too.
    await call(second, "POST", "/auth/logout", {"token": tokens["refresh_token"]})
    status, body = await call(
        first, "POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]}
    )
    assert (status, body["error_code"]) == (401, "UNAUTHORIZED")


async def test_expired_and_forged_tokens(make_client: AppFactory, clock: FakeClock) -> None:
    client = await make_client()
    await register(client, "cy@example.com", verified=True)
    _, body = await call(
        client,
        "POST",
        "/auth/login",
        {"email": "cy@example.com", "password": "correct horse battery"},
    )
    access = body["data"]["access_token"]
    forged = access[:-4] + ("AAAA" if not access.endswith("AAAA") else "BBBB")
    status, body = await call(client, "POST", "/auth/introspect", {"token": forged})
    assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
    status, body = await call(client, "POST", "/auth/logout", {"token": "not.a.jwt"})
    assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
    clock.advance(901)
    status, body = await call(client, "POST", "/auth/introspect", {"token": access})
    assert (status, body["error_code"]) == (401, "TOKEN_EXPIRED")


async def test_login_failures_are_limited_per_account(
    make_client: AppFactory, clock: FakeClock
) -> None:
    client = await make_client()
    await register(client, "dee@example.com", verified=True)
    await register(client, "eve@example.com", verified=True)
    wrong = {"email": "dee@example.com", "password": "wrong password!"}
    right = {"email": "dee@example.com", "password": "correct horse battery"}
    for _ in range(10):
        status, body = await call(client, "POST", "/auth/login", wrong)
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
    status, body = await call(client, "POST", "/auth/login", right)
    assert (status, body["error_code"]) == (429, "RATE_LIMITED")
    # Another account is not affected.
    status, _ = await call(
        client,
        "POST",
        "/auth/login",
        {"email": "eve@example.com", "password": "correct horse battery"},
    )
    assert status == 200
    clock.advance(15 * 60 + 1)
    status, _ = await call(client, "POST", "/auth/login", right)
    assert status == 200


async def test_unknown_email_and_wrong_password_look_alike(make_client: AppFactory) -> None:
    client = await make_client()
    await register(client, "fay@example.com", verified=True)
    a = await call(
        client, "POST", "/auth/login", {"email": "nobody@example.com", "password": "x" * 9}
    )
    b = await call(client, "POST", "/auth/login", {"email": "fay@example.com", "password": "x" * 9})
    assert a == b and a[0] == 401


async def test_users_crud(make_client: AppFactory, otp_file: Path) -> None:
    client = await make_client()
    user = await register(client, "gus@example.com", verified=True, credits=250, role="staff")
    assert user["credit_balance"] == 250 and user["role"] == "staff" and user["is_verified"]
    assert read_registration_codes(otp_file, user["user_id"]) == 0  # verified: no code sent
    status, body = await call(
        client, "POST", "/users", {"email": "GUS@example.com", "password": "p" * 8}
    )
    assert (status, body["error_code"]) == (409, "EMAIL_ALREADY_EXISTS")
    status, body = await call(client, "GET", f"/users/{user['user_id']}")
    assert status == 200 and body["data"] == user
    status, body = await call(client, "GET", "/users", params={"email": "Gus@example.com"})
    assert status == 200 and body["data"]["user_id"] == user["user_id"]
    status, body = await call(client, "GET", "/users", params={"email": "no@example.com"})
    assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")
    status, body = await call(
        client, "PATCH", f"/users/{user['user_id']}", {"is_flagged": True, "role": "admin"}
    )
    assert status == 200 and body["data"]["is_flagged"] and body["data"]["role"] == "admin"
    status, body = await call(client, "GET", f"/users/{uuid.uuid4()}")
    assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")
    status, body = await call(client, "PATCH", f"/users/{uuid.uuid4()}", {"is_flagged": True})
    assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")


def read_registration_codes(path: Path, user_id: str) -> int:
    from tests.users.conftest import read_codes

    return len([c for c in read_codes(path) if c["user_id"] == user_id])


async def test_internal_credential_required(make_client: AppFactory) -> None:
    client = await make_client()
    resp = await client.get(f"/users/{uuid.uuid4()}")
    assert resp.status == 401 and (await resp.json())["error_code"] == "UNAUTHORIZED"
    resp = await client.post("/users", json={"email": "a@b.co", "password": "p" * 8})
    assert resp.status == 401
    resp = await client.post(
        "/users",
        json={"email": "a@b.co", "password": "p" * 8},
        headers={"X-Internal-Token": "wrong"},
    )
    assert resp.status == 401
    resp = await client.get("/health")
    assert resp.status == 200 and (await resp.json())["checks"] == {"database": "ok"}
    resp = await client.get("/metrics")
    assert resp.status == 200 and "http_requests_total" in await resp.text()
    resp = await client.get("/otp/status", headers=HEADERS)
    assert resp.status == 400
