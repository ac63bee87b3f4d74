"""When the revocation feed is behind (an overloaded process, a slow users service), requests
share one poll instead of each asking the users service: the check stays current without adding
a round trip per request. A fake feed and clock; the real path is in test_access_tokens.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt

from central.orchestrator.access_tokens import AccessTokens
from central.users.tokens import ISSUER

SECRET = "a secret long enough for HS256 signatures, for the test"


class SlowFeed:
    def __init__(self) -> None:
        self.polls = 0
        self.introspections = 0
        self.release = asyncio.Event()

    async def revocations(self, since: int | None) -> dict[str, Any]:
        self.polls += 1
        await self.release.wait()
        return {"cursor": 1, "revoked": [], "changed_users": []}

    async def user(self, user_id: str) -> dict[str, Any]:
        return {"user_id": user_id, "email": "a@example.com", "role": "customer"}

    async def introspect(self, token: str) -> dict[str, Any]:
        self.introspections += 1
        return {"user_id": "u", "email": "", "role": "customer", "is_flagged": False}


def _token() -> str:
    claims = {"sub": "u", "typ": "access", "jti": "j1", "iss": ISSUER, "exp": time.time() + 60}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_stale_requests_share_one_poll_and_introspect_nothing() -> None:
    now = [100.0]
    feed = SlowFeed()
    tokens = AccessTokens(feed, SECRET, clock=lambda: now[0])
    assert not tokens.fresh()  # never polled
    waiting = [asyncio.create_task(tokens.claims(_token())) for _ in range(20)]
    for _ in range(5):  # let every request and the poll reach their first wait
        await asyncio.sleep(0)
    assert feed.polls == 1  # one read for the twenty
    feed.release.set()
    holders = await asyncio.gather(*waiting)
    assert {h["user_id"] for h in holders} == {"u"}
    assert feed.introspections == 0 and feed.polls == 1 and tokens.fresh()
    now[0] += 1.0  # stale again: the next request polls again
    await tokens.claims(_token())
    assert feed.polls == 2 and feed.introspections == 0
