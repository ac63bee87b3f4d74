"""Who is calling: users and staff by access token (checked here against the users service's
revocation feed, so a logout is seen by every replica within a second: access_tokens.py), and
per-address request limits."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from central.errors import ApiError
from central.orchestrator.access_tokens import AccessTokens
from central.orchestrator.backends import Backends

ROLES = ("customer", "staff", "admin")
# Set by the app's lifecycle; without it (an app not started) every token is introspected.
access_tokens_key = web.AppKey("access_tokens", AccessTokens)


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    role: str
    is_flagged: bool


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("UNAUTHORIZED", "a bearer token is required")
    return token.strip()


async def authenticate(request: web.Request, backends: Backends) -> Principal:
    token = bearer_token(request)
    if len(token) > 4096:
        raise ApiError("UNAUTHORIZED", "token is not valid")
    checker = request.app.get(access_tokens_key)
    claims: Mapping[str, Any]
    if checker is not None:
        claims = await checker.claims(token)
    else:
        claims = await backends.users.introspect(token)
    return Principal(
        user_id=claims["user_id"],
        email=claims.get("email", ""),
        role=claims.get("role", "customer"),
        is_flagged=bool(claims.get("is_flagged", False)),
    )


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise ApiError("FORBIDDEN", f"this call needs the role {' or '.join(roles)}")


class AddressRateLimiter:
    """Fixed one-minute windows per (bucket, client address); per process, which is enough to
    stop a brute-force loop and leaves room for a venue's staff behind one address."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[tuple[str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))

    def check(self, bucket: str, address: str) -> None:
        minute = int(time.monotonic() // 60)
        key = (bucket, address)
        window, count = self._windows[key]
        if window != minute:
            window, count = minute, 0
            if len(self._windows) > 100_000:
                self._windows.clear()
        count += 1
        self._windows[key] = (window, count)
        if count > self.per_minute:
            raise ApiError("RATE_LIMITED", "too many requests from this address; try again shortly")


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"
