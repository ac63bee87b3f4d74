"""The public account path through the orchestrator, with every service real."""

from __future__ import annotations

from pathlib import Path

from cluster import running_cluster


async def test_register_verify_login_balance(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        status, body = await c.call(
            "POST",
            "/api/auth/register",
            json_body={
                "email": "Ann@Example.com",
                "password": "a long password",
                "phone": "+6591234567",
            },
        )
        assert status == 201, body
        assert body["success"] is True
        user_id = body["data"]["user_id"]
        assert body["data"]["status"] == "PENDING_VERIFICATION"

        # Unverified: the right password is refused with UNVERIFIED_ACCOUNT.
        status, body = await c.call(
            "POST",
            "/api/auth/login",
            json_body={"email": "ann@example.com", "password": "a long password"},
        )
        assert (status, body["error_code"]) == (403, "UNVERIFIED_ACCOUNT")

        codes = c.otp_codes(user_id=user_id, purpose="registration")
        assert len(codes) == 1
        status, body = await c.call(
            "POST",
            "/api/auth/verify-registration",
            json_body={"user_id": user_id, "otp_code": codes[0]},
        )
        assert status == 200, body
        assert body["data"]["access_token"]

        status, body = await c.call(
            "POST",
            "/api/auth/login",
            json_body={"email": "ann@example.com", "password": "a long password"},
        )
        assert status == 200, body
        login = body["data"]
        assert login["token_type"] == "Bearer"
        assert login["user"]["user_id"] == user_id
        assert login["user"]["role"] == "customer"

        status, body = await c.call("GET", "/api/credits/balance", token=login["access_token"])
        assert status == 200, body
        assert body["data"] == {"user_id": user_id, "credit_balance": 0}

        # A refresh token mints a new access token; logout ends the whole session: the access
        # token, its refresh token and what was minted from it. Another login stays valid.
        status, body = await c.call(
            "POST",
            "/api/auth/login",
            json_body={"email": "ann@example.com", "password": "a long password"},
        )
        other = body["data"]["access_token"]
        status, body = await c.call("POST", "/api/auth/refresh", token=login["refresh_token"])
        assert status == 200, body
        fresh = body["data"]["access_token"]
        status, _ = await c.call("POST", "/api/auth/logout", token=login["access_token"])
        assert status == 200
        status, body = await c.call("GET", "/api/credits/balance", token=login["access_token"])
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
        status, body = await c.call("GET", "/api/credits/balance", token=fresh)
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
        status, body = await c.call("POST", "/api/auth/refresh", token=login["refresh_token"])
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
        status, body = await c.call("GET", "/api/credits/balance", token=other)
        assert status == 200


async def test_duplicate_email_and_wrong_password(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        user = await c.make_user()
        status, body = await c.call(
            "POST",
            "/api/auth/register",
            json_body={"email": user["email"], "password": "another password"},
        )
        assert (status, body["error_code"]) == (409, "EMAIL_ALREADY_EXISTS")
        status, body = await c.call(
            "POST",
            "/api/auth/login",
            json_body={"email": user["email"], "password": "wrong password"},
        )
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")


async def test_wrong_registration_code_then_resend(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        status, body = await c.call(
            "POST",
            "/api/auth/register",
            json_body={"email": "bo@example.com", "password": "a long password"},
        )
        user_id = body["data"]["user_id"]
        first = c.otp_codes(user_id=user_id)[0]
        wrong = "000000" if first != "000000" else "111111"
        status, body = await c.call(
            "POST",
            "/api/auth/verify-registration",
            json_body={"user_id": user_id, "otp_code": wrong},
        )
        assert (status, body["error_code"]) == (401, "OTP_INVALID")
        assert body["details"]["attempts_left"] == 2

        status, body = await c.call(
            "POST",
            "/api/otp/resend",
            json_body={"context": "registration", "reference_id": user_id},
        )
        assert status == 200, body
        codes = c.otp_codes(user_id=user_id)
        assert len(codes) == 2
        # The first code died with the resend; the new one verifies.
        if codes[1] != first:
            status, body = await c.call(
                "POST",
                "/api/auth/verify-registration",
                json_body={"user_id": user_id, "otp_code": first},
            )
            assert status == 401, body
        status, body = await c.call(
            "POST",
            "/api/auth/verify-registration",
            json_body={"user_id": user_id, "otp_code": codes[1]},
        )
        assert status == 200, body


async def test_correlation_id_echoed_and_generated(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        async with c.session.get(
            c.url + "/api/events", headers={"X-Correlation-ID": "abc-123"}
        ) as r:
            assert r.headers["X-Correlation-ID"] == "abc-123"
        async with c.session.get(c.url + "/api/events") as r:
            assert len(r.headers["X-Correlation-ID"]) >= 16
