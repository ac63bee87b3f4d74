"""One-time codes: 6 digits from `secrets`, stored only as an HMAC, 5 minutes, 3 attempts,
at most 3 resends, one current challenge per (user, purpose, reference).

Every decision is a conditional UPDATE whose row count says whether it happened, so concurrent
attempts cannot get more than three guesses and cannot verify a dead code."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
from central.errors import ApiError
from central.users.clock import Clock, as_utc, iso, utcnow
from central.users.schema import otp_challenges, users

log = logging.getLogger(__name__)

OTP_TTL = timedelta(minutes=5)
OTP_ATTEMPTS = 3
OTP_MAX_RESENDS = 3
# Codes sent per (user, purpose) in a sliding window, resends included: room for a registration
# with its resends or a few purchases and transfers, not for texting someone without end.
OTP_SEND_LIMIT = 8
OTP_SEND_WINDOW = timedelta(minutes=15)
CODE_DIGITS = 6
_RACE_RETRIES = 5


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    user_id: str
    purpose: str
    reference_id: str
    code_hash: str
    expires_at: datetime
    attempts_left: int
    resends: int
    verified_at: datetime | None

    def status(self, now: datetime) -> dict[str, Any]:
        return {
            "challenge_id": self.challenge_id,
            "verified": self.verified_at is not None,
            "attempts_left": self.attempts_left,
            "expires_at": iso(self.expires_at),
            # Whether a caller must ask for a new code: run out of time or of attempts.
            "expired": self.verified_at is None and self.expires_at <= now,
            "exhausted": self.verified_at is None and self.attempts_left <= 0,
            "resends_left": max(0, OTP_MAX_RESENDS - self.resends),
        }


def _challenge(row: sa.Row[Any]) -> Challenge:
    return Challenge(
        challenge_id=row.challenge_id,
        user_id=row.user_id,
        purpose=row.purpose,
        reference_id=row.reference_id,
        code_hash=row.code_hash,
        expires_at=as_utc(row.expires_at),
        attempts_left=int(row.attempts_left),
        resends=int(row.resends),
        verified_at=as_utc(row.verified_at) if row.verified_at is not None else None,
    )


class OtpStore:
    def __init__(
        self,
        engine: AsyncEngine,
        key: str,
        clock: Clock = utcnow,
        ttl: timedelta = OTP_TTL,
        *,
        send_limit: int = OTP_SEND_LIMIT,
        send_window: timedelta = OTP_SEND_WINDOW,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.send_limit = send_limit
        self.send_window = send_window
        self._key = key.encode()
        self.clock = clock

    def _hash(self, challenge_id: str, code: str) -> str:
        # Keyed by a server secret and salted by the challenge: a leaked table does not give
        # the codes back, even though there are only a million of them.
        return hmac.new(self._key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _current_query(user_id: str, purpose: str, reference_id: str) -> sa.Select[Any]:
        return sa.select(otp_challenges).where(
            otp_challenges.c.user_id == user_id,
            otp_challenges.c.purpose == purpose,
            otp_challenges.c.reference_id == reference_id,
            otp_challenges.c.superseded == sa.false(),
        )

    async def current(self, user_id: str, purpose: str, reference_id: str) -> Challenge | None:
        async with autocommit(self.engine).connect() as conn:
            return await self._current(conn, user_id, purpose, reference_id)

    async def _current(
        self, conn: AsyncConnection, user_id: str, purpose: str, reference_id: str
    ) -> Challenge | None:
        row = (await conn.execute(self._current_query(user_id, purpose, reference_id))).first()
        return _challenge(row) if row is not None else None

    async def _replace(
        self, user_id: str, purpose: str, reference_id: str, *, resend: bool
    ) -> tuple[Challenge, str]:
        """Kill the current challenge (if any) and insert a new one, in one transaction.
        The partial unique index makes a concurrent replacement fail instead of leaving two."""
        for _ in range(_RACE_RETRIES):
            code = new_code()
            challenge_id = str(uuid.uuid4())
            now = self.clock()
            try:
                async with self.engine.begin() as conn:
                    # A no-op update takes the user's row lock: replacements for one user queue
                    # up instead of racing (SQLite serialises writers anyway).
                    locked = await conn.execute(
                        users.update()
                        .where(users.c.user_id == user_id)
                        .values(user_id=users.c.user_id)
                    )
                    if locked.rowcount != 1:
                        raise ApiError("USER_NOT_FOUND", "no such user")
                    # Counted under the user's row lock, in the transaction that inserts: two
                    # requests cannot both see room for one more code.
                    await self._check_send_quota(conn, user_id, purpose, now)
                    old = await self._current(conn, user_id, purpose, reference_id)
                    resends = 0
                    if resend:
                        if old is None:
                            raise ApiError("OTP_NOT_FOUND", "no code was sent for this; ask anew")
                        if old.verified_at is not None:
                            raise ApiError("OTP_NOT_FOUND", "already verified; nothing to resend")
                        if old.resends >= OTP_MAX_RESENDS:
                            raise ApiError(
                                "RATE_LIMITED",
                                f"at most {OTP_MAX_RESENDS} resends",
                                {"resends_left": 0},
                            )
                        resends = old.resends + 1
                    if old is not None:
                        killed = await conn.execute(
                            otp_challenges.update()
                            .where(
                                otp_challenges.c.challenge_id == old.challenge_id,
                                otp_challenges.c.superseded == sa.false(),
                            )
                            .values(superseded=True)
                        )
                        if killed.rowcount != 1:
                            raise _Raced()
                    await conn.execute(
                        otp_challenges.insert().values(
                            challenge_id=challenge_id,
                            user_id=user_id,
                            purpose=purpose,
                            reference_id=reference_id,
                            code_hash=self._hash(challenge_id, code),
                            expires_at=now + self.ttl,
                            attempts_left=OTP_ATTEMPTS,
                            resends=resends,
                            created_at=now,
                        )
                    )
                    new = await self._current(conn, user_id, purpose, reference_id)
            except (_Raced, sa.exc.IntegrityError):
                continue
            assert new is not None
            return new, code
        raise ApiError("SERVICE_UNAVAILABLE", "too many concurrent OTP requests; retry")

    async def _check_send_quota(
        self, conn: AsyncConnection, user_id: str, purpose: str, now: datetime
    ) -> None:
        since = now - self.send_window
        sent, oldest = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.min(otp_challenges.c.created_at)).where(
                    otp_challenges.c.user_id == user_id,
                    otp_challenges.c.purpose == purpose,
                    otp_challenges.c.created_at > since,
                )
            )
        ).one()
        if sent < self.send_limit:
            return
        wait = (as_utc(oldest) + self.send_window - now).total_seconds()
        retry_after = max(1, math.ceil(wait))
        raise ApiError(
            "RATE_LIMITED",
            f"at most {self.send_limit} codes per {int(self.send_window.total_seconds())} s;"
            f" try again in {retry_after} s",
            {"retry_after_s": retry_after},
        )

    async def create(self, user_id: str, purpose: str, reference_id: str) -> tuple[Challenge, str]:
        """A fresh challenge; any current one for the same (user, purpose, reference) dies."""
        return await self._replace(user_id, purpose, reference_id, resend=False)

    async def resend(self, user_id: str, purpose: str, reference_id: str) -> tuple[Challenge, str]:
        """A new code for the current challenge (fresh expiry and attempts), at most 3 times."""
        return await self._replace(user_id, purpose, reference_id, resend=True)

    async def verify(self, user_id: str, purpose: str, reference_id: str, code: str) -> Challenge:
        for _ in range(_RACE_RETRIES):
            now = self.clock()
            async with self.engine.begin() as conn:
                ch = await self._current(conn, user_id, purpose, reference_id)
                if ch is None:
                    raise ApiError("OTP_NOT_FOUND", "no code was sent for this")
                matches = hmac.compare_digest(ch.code_hash, self._hash(ch.challenge_id, code))
                if ch.verified_at is not None:
                    if matches:
                        return ch  # a repeat of a successful verify
                    raise ApiError("OTP_INVALID", "wrong code", {"attempts_left": ch.attempts_left})
                if ch.attempts_left <= 0:
                    raise ApiError("OTP_MAX_RETRIES", "too many wrong codes; request a new one")
                if ch.expires_at <= now:
                    raise ApiError("OTP_EXPIRED", "the code has expired; request a new one")
                live = sa.and_(
                    otp_challenges.c.challenge_id == ch.challenge_id,
                    otp_challenges.c.superseded == sa.false(),
                    otp_challenges.c.verified_at.is_(None),
                    otp_challenges.c.attempts_left > 0,
                )
                if matches:
                    done = await conn.execute(
                        otp_challenges.update()
                        .where(live, otp_challenges.c.expires_at > now)
                        .values(verified_at=now)
                    )
                    if done.rowcount == 1:
                        verified = await self._current(conn, user_id, purpose, reference_id)
                        assert verified is not None
                        return verified
                    continue  # it changed under us: judge again from the new state
                spent = await conn.execute(
                    otp_challenges.update()
                    .where(live)
                    .values(attempts_left=otp_challenges.c.attempts_left - 1)
                )
                if spent.rowcount != 1:
                    continue
                left = await conn.scalar(
                    sa.select(otp_challenges.c.attempts_left).where(
                        otp_challenges.c.challenge_id == ch.challenge_id
                    )
                )
            # Outside the transaction: the spent attempt is committed before we answer.
            if not left:
                raise ApiError("OTP_MAX_RETRIES", "too many wrong codes; request a new one")
            raise ApiError("OTP_INVALID", "wrong code", {"attempts_left": int(left)})
        raise ApiError("SERVICE_UNAVAILABLE", "too many concurrent OTP attempts; retry")


class _Raced(Exception):
    """The challenge we meant to replace was replaced by someone else first."""
