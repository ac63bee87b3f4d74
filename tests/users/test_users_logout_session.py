"""Logout ends the whole session: the access token it is called with, the refresh token issued
with it, and every access token minted from that refresh token. The user's other sessions (another
device's login) keep working."""

from __future__ import annotations

from typing import Any

from tests.users.conftest import AppFactory, call, register

RIGHT = "correct horse battery"


async def _login(client: Any, email: str) -> dict[str, Any]:
    status, body = await call(client, "POST", "/auth/login", {"email": email, "password": RIGHT})
    assert status == 200, body
    return dict(body["data"])


async def test_logout_with_the_access_token_ends_its_refresh_token(
    make_client: AppFactory,
) -> None:
    client = await make_client()
    await register(client, "sam@example.com", verified=True)
    phone = await _login(client, "sam@example.com")
    laptop = await _login(client, "sam@example.com")
    status, body = await call(
        client, "POST", "/auth/refresh", {"refresh_token": phone["refresh_token"]}
    )
    assert status == 200
    minted = body["data"]["access_token"]

    status, _ = await call(client, "POST", "/auth/logout", {"token": phone["access_token"]})
    assert status == 200
    # The refresh token of that login can mint nothing any more …
    status, body = await call(
        client, "POST", "/auth/refresh", {"refresh_token": phone["refresh_token"]}
    )
    assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
    # … and an access token minted from it earlier stops working too.
    for token in (phone["access_token"], minted):
        status, body = await call(client, "POST", "/auth/introspect", {"token": token})
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
    # The other login of the same user is another session: it keeps working.
    status, _ = await call(client, "POST", "/auth/introspect", {"token": laptop["access_token"]})
    assert status == 200
    status, _ = await call(
        client, "POST", "/auth/refresh", {"refresh_token": laptop["refresh_token"]}
    )
    assert status == 200
