"""Access tokens checked here, not by a users round trip per request.

A token is an HS256 JWT of the users service (central/users/tokens.py): its signature, issuer,
type and expiry are checked with the shared secret. What a signature cannot say — that the token,
or its whole session, was logged out, or that its holder's role or flag changed — comes from the
users service's feed (GET /auth/revocations), polled every POLL_INTERVAL_S: the set of revoked
token and session keys, and which cached holders to read again. A logout through this process
polls at once, so its own next request already sees it; every other process sees it within one
poll. The holder (e-mail, role, flag) is read from users once and kept until the feed says it
changed.

The one-second promise must hold even when the feed does not answer: when the last successful
poll began more than FRESH_FOR_S ago, every request falls back to the users service's
introspection (the old path, slower and always current). A secret that does not match the users
service's (a scaled-out orchestrator started without --jwt-secret) falls back the same way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import Any, Protocol

import jwt

from central.errors import ApiError
from central.users.tokens import decode_signed

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25
# Revocations committed before a poll began are in its answer: a poll begun this recently keeps
# every revocation's delay under a second, with room for the poll's own round trip.
FRESH_FOR_S = 0.75
MAX_HOLDERS = 100_000
# A signed token never changes, so its signature is checked once per process and what it says is
# kept (the most recently used this many): a signature check (HMAC, the claims' JSON, PyJWT's
# checks) was about 4.5 % of the server's CPU in a purchase. Expiry and revocation are still judged
# on every request.
VERIFIED_KEPT = 4096


class UsersFeed(Protocol):
    """The users service as this check reads it (central/clients/users_feed.py)."""

    async def revocations(self, since: int | None) -> dict[str, Any]: ...

    async def user(self, user_id: str) -> dict[str, Any]: ...

    async def introspect(self, token: str) -> dict[str, Any]: ...


def session_key(sid: str) -> str:
    return f"sid:{sid}"  # as the users service names a revoked session


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class AccessTokens:
    def __init__(
        self,
        users: UsersFeed,
        secret: str,
        *,
        poll_interval: float = POLL_INTERVAL_S,
        fresh_for: float = FRESH_FOR_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.users = users
        self._secret = secret
        self.poll_interval = poll_interval
        self.fresh_for = fresh_for
        self._clock = clock
        self._wall = wall
        self._revoked: dict[str, float] = {}  # key -> unix expiry (then the token fails anyway)
        self._holders: dict[str, dict[str, Any]] = {}
        self._since: int | None = None
        self._fresh_at = float("-inf")  # when the last successful poll began
        self._secret_ok = True
        self._task: asyncio.Task[None] | None = None
        self._poll_lock = asyncio.Lock()
        self._inflight: tuple[float, asyncio.Future[None]] | None = None
        self._changes = 0  # holders dropped by the feed so far (a fetch racing one is not kept)
        self.introspections = 0  # requests that took the slow path (for tests and metrics)
        self._verified = functools.lru_cache(maxsize=VERIFIED_KEPT)(self._verify)

    # ----- the feed -----

    async def start(self) -> None:
        with suppress(ApiError):
            await self.poll()  # not fatal: requests introspect until the feed answers
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._shared_poll()
            except ApiError as err:
                log.warning("revocation feed unavailable (%s): introspecting meanwhile", err.code)
            except Exception:
                log.exception("revocation feed poll failed")

    async def poll(self) -> None:
        """One read of the feed; after it returns, every revocation committed before it began is
        known here. Concurrent callers share one read."""
        async with self._poll_lock:
            began = self._clock()
            answer = await self.users.revocations(self._since)
            for item in answer["revoked"]:
                self._revoked[item["key"]] = _unix(item["expires_at"])
            for user_id in answer["changed_users"]:
                self._holders.pop(user_id, None)
                self._changes += 1
            self._since = int(answer["cursor"])
            self._fresh_at = began
            self._prune()

    async def _shared_poll(self) -> None:
        """Join the poll in flight if it began recently enough to make this process fresh,
        else start one."""
        now = self._clock()
        inflight = self._inflight
        if inflight is None or inflight[1].done() or inflight[0] + self.fresh_for < now:
            task = asyncio.ensure_future(self.poll())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            inflight = (now, task)
            self._inflight = inflight
        await asyncio.shield(inflight[1])

    async def catch_up(self) -> None:
        """After a change made through this process: poll now; if the feed cannot answer,
        introspect every token until it can (never a window where the change is unseen here)."""
        try:
            await self.poll()
        except ApiError:
            self._fresh_at = float("-inf")

    def _prune(self) -> None:
        now = self._wall()
        if len(self._revoked) > 1000:
            self._revoked = {k: exp for k, exp in self._revoked.items() if exp > now}

    def fresh(self) -> bool:
        return self._clock() - self._fresh_at <= self.fresh_for

    def forget_holder(self, user_id: str) -> None:
        """This process changed the user (role, flag): read it again on its next request."""
        self._holders.pop(user_id, None)
        self._changes += 1

    # ----- a request's token -----

    async def claims(self, token: str) -> dict[str, Any]:
        """The token holder as the users service's introspection answers it: user_id, email,
        role, is_flagged. Raises UNAUTHORIZED / TOKEN_EXPIRED as it does."""
        if not self._secret_ok:
            return await self._introspect(token)
        if not self.fresh():
            # Overloaded, or the feed is slow: wait for one poll shared by every waiting request
            # (not one introspection each, which would only add to the load); introspect only
            # when the feed does not answer.
            with suppress(ApiError):
                await self._shared_poll()
            if not self.fresh():
                return await self._introspect(token)
        try:
            expires, user_id, typ, jti, sid = self._verified(token)
        except jwt.InvalidSignatureError:
            # Either a forgery or a secret unlike the users service's: the users service decides,
            # and if it accepts the token our secret is wrong — stop checking locally.
            claims = await self._introspect(token)
            log.error("access tokens: this orchestrator's JWT secret differs from the users "
                      "service's (set --jwt-secret alike): checking every token at users")  # fmt: skip
            self._secret_ok = False
            return claims
        except jwt.PyJWTError:
            raise ApiError("UNAUTHORIZED", "invalid token") from None
        if expires <= self._wall():
            raise ApiError("TOKEN_EXPIRED", "token expired")
        if typ != "access":
            raise ApiError("UNAUTHORIZED", "not an access token")
        if jti in self._revoked or (sid and session_key(sid) in self._revoked):
            raise ApiError("UNAUTHORIZED", "token revoked")
        return await self._holder(user_id)

    def _verify(self, token: str) -> tuple[int, str, str, str, str]:
        """(expiry, user id, type, token id, session id) of a token whose signature holds.
        Raises PyJWT's errors or UNAUTHORIZED; an exception is never kept, only an answer."""
        raw = decode_signed(token, self._secret)
        try:
            return (
                int(raw["exp"]),
                str(raw["sub"]),
                str(raw["typ"]),
                str(raw["jti"]),
                str(raw.get("sid") or ""),
            )
        except (TypeError, ValueError, OverflowError):
            raise ApiError("UNAUTHORIZED", "invalid token") from None

    async def _holder(self, user_id: str) -> dict[str, Any]:
        holder = self._holders.get(user_id)
        if holder is None:
            changes = self._changes
            try:
                user = await self.users.user(user_id)
            except ApiError as err:
                if err.code in ("USER_NOT_FOUND", "INVALID_UUID", "VALIDATION_ERROR"):
                    raise ApiError("UNAUTHORIZED", "the account no longer exists") from None
                raise
            holder = {
                "user_id": user["user_id"],
                "email": user.get("email", ""),
                "role": user.get("role", "customer"),
                "is_flagged": bool(user.get("is_flagged", False)),
            }
            if len(self._holders) >= MAX_HOLDERS:
                self._holders.clear()
            if changes == self._changes:  # else the answer may predate a change just reported
                self._holders[user_id] = holder
        return holder

    async def _introspect(self, token: str) -> dict[str, Any]:
        self.introspections += 1
        return await self.users.introspect(token)
