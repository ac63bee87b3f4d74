"""Access tokens are checked in the orchestrator (access_tokens.py): no users round trip per
request, yet a revocation made anywhere — here through the users service itself, as another
orchestrator process would — refuses the token within one second, and a role change counts
within one second too."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster, running_cluster

from central.orchestrator.auth import access_tokens_key

PROMISE_S = 1.0


async def _status_within(c: Cluster, path: str, token: str, wanted: int, seconds: float) -> float:
    """Ask until the answer is `wanted`; the seconds it took (the deadline bounds the wait)."""
    started = time.monotonic()
    while True:
        status, _ = await c.call("GET", path, token=token)
        elapsed = time.monotonic() - started
        if status == wanted:
            return elapsed
        assert elapsed < seconds, f"{path} still answered {status} after {elapsed:.2f} s"
        await asyncio.sleep(0.01)


async def test_requests_need_no_introspection_and_a_revocation_elsewhere_ends_the_token(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as c:
        tokens = c.app[access_tokens_key]
        user = await c.make_user(credits=5)
        for _ in range(5):
            status, body = await c.call("GET", "/api/credits/balance", token=user["token"])
            assert status == 200, body
        assert tokens.introspections == 0  # signature, expiry and revocations checked here

        # Logged out at the users service directly (as through another orchestrator process).
        revoked = await c.backends.users.call("POST", "/auth/logout", json={"token": user["token"]})
        assert revoked == {"revoked": True}
        took = await _status_within(c, "/api/credits/balance", user["token"], 401, PROMISE_S)
        assert took < PROMISE_S
        status, body = await c.call("GET", "/api/credits/balance", token=user["token"])
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
        # the feed told it (a failing feed would have fallen back to introspection)
        assert tokens.introspections == 0 and tokens.fresh()


async def test_a_role_change_elsewhere_counts_within_a_second(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        user = await c.make_user()
        status, _ = await c.call("GET", "/api/admin/events", token=user["token"])
        assert status == 403  # a customer; the holder is now cached here
        await c.backends.users.call("PATCH", f"/users/{user['user_id']}", json={"role": "admin"})
        took = await _status_within(c, "/api/admin/events", user["token"], 200, PROMISE_S)
        assert took < PROMISE_S
        assert c.app[access_tokens_key].introspections == 0


async def test_forged_and_expired_tokens_are_refused_here(tmp_path: Path) -> None:
    import jwt

    async with running_cluster(tmp_path, access_ttl=1) as c:
        user = await c.make_user()
        claims = jwt.decode(user["token"], options={"verify_signature": False})
        # the tokens made below live for minutes: with access_ttl=1 the user's own expiry can pass
        # while the test runs on a loaded machine, and expiry is checked before the token's type
        claims["exp"] = int(time.time()) + 300
        forged = jwt.encode(
            {**claims, "role": "admin"},
            "not the secret, but long enough for HS256",
            algorithm="HS256",
        )
        status, body = await c.call("GET", "/api/credits/balance", token=forged)
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
        secret = c.settings.secret("jwt_secret")
        expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, secret, algorithm="HS256")
        status, body = await c.call("GET", "/api/credits/balance", token=expired)
        assert (status, body["error_code"]) == (401, "TOKEN_EXPIRED")
        refresh_typed = jwt.encode({**claims, "typ": "refresh"}, secret, algorithm="HS256")
        status, body = await c.call("GET", "/api/credits/balance", token=refresh_typed)
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")


async def test_a_signature_is_checked_once_and_expiry_and_revocation_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from central.orchestrator import access_tokens

    checked: list[str] = []
    real = access_tokens.decode_signed

    def counting(token: str, secret: str) -> dict[str, Any]:
        checked.append(token)
        return real(token, secret)

    monkeypatch.setattr(access_tokens, "decode_signed", counting)
    async with running_cluster(tmp_path) as c:
        tokens = c.app[access_tokens_key]
        first, second = await c.make_user(), await c.make_user()
        for _ in range(5):
            status, body = await c.call("GET", "/api/credits/balance", token=first["token"])
            assert status == 200, body
        assert checked.count(first["token"]) == 1  # the signature once, not per request

        # a kept token is still judged by the clock: past its expiry it is refused
        later = time.time() + 10 * 24 * 3600
        monkeypatch.setattr(tokens, "_wall", lambda: later)
        status, body = await c.call("GET", "/api/credits/balance", token=first["token"])
        assert (status, body["error_code"]) == (401, "TOKEN_EXPIRED")
        monkeypatch.setattr(tokens, "_wall", time.time)

        # ...and by the revocations: a logout elsewhere ends a kept token as before
        status, _ = await c.call("GET", "/api/credits/balance", token=second["token"])
        assert status == 200
        revoked = await c.backends.users.call(
            "POST", "/auth/logout", json={"token": second["token"]}
        )
        assert revoked == {"revoked": True}
        await _status_within(c, "/api/credits/balance", second["token"], 401, PROMISE_S)
        assert checked.count(second["token"]) == 1

        # a token that failed its check is never kept as good: it fails every time
        bad = first["token"][:-4] + ("AAAA" if not first["token"].endswith("AAAA") else "BBBB")
        for _ in range(2):
            status, body = await c.call("GET", "/api/credits/balance", token=bad)
            assert status == 401, body
        assert checked.count(bad) == 2
