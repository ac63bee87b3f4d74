"""Access and refresh tokens: HS256 JWTs with a jti, so one can be revoked for every process, and
a session id (sid) shared by the pair a login issues and by every access token refreshed from it,
so a logout can end the whole session at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from central.errors import ApiError
from central.users.clock import Clock, utcnow

ALGORITHM = "HS256"
ISSUER = "ticketremaster-users"


def decode_signed(token: str, secret: str) -> dict[str, Any]:
    """The claims of a token this service signed, its signature and required claims checked;
    expiry is left to the caller's clock. Raises PyJWT's errors. The users service and the
    orchestrator's local check read tokens through this one function."""
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        issuer=ISSUER,
        options={"verify_exp": False, "require": ["exp", "jti", "sub", "typ", "iss"]},
    )
    return claims


@dataclass(frozen=True)
class Claims:
    user_id: str
    role: str
    typ: str
    jti: str
    expires_at: datetime
    sid: str = ""  # empty for tokens issued before sessions existed


class TokenIssuer:
    def __init__(
        self, secret: str, *, access_ttl: int, refresh_ttl: int, clock: Clock = utcnow
    ) -> None:
        if not secret:
            raise ValueError("jwt secret must not be empty")
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock

    def _issue(self, user_id: str, role: str, typ: str, ttl: int, sid: str) -> str:
        now = self._clock()
        claims = {
            "sub": user_id,
            "sid": sid,
            "role": role,
            "typ": typ,
            "jti": uuid.uuid4().hex,
            "iss": ISSUER,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    @staticmethod
    def new_session() -> str:
        return uuid.uuid4().hex

    def access(self, user_id: str, role: str, sid: str) -> str:
        return self._issue(user_id, role, "access", self.access_ttl, sid)

    def refresh(self, user_id: str, role: str, sid: str) -> str:
        return self._issue(user_id, role, "refresh", self.refresh_ttl, sid)

    def session_end(self, now: datetime) -> datetime:
        """The latest moment a token of a session still open now can expire."""
        return now + timedelta(seconds=max(self.access_ttl, self.refresh_ttl))

    def decode(self, token: str, *, check_expiry: bool = True) -> Claims:
        """Check the signature and the claims; expiry is judged by our clock, not PyJWT's,
        so that one clock decides every expiry in this service."""
        try:
            raw = decode_signed(token, self._secret)
        except jwt.PyJWTError:
            raise ApiError("UNAUTHORIZED", "invalid token") from None
        try:
            exp = datetime.fromtimestamp(int(raw["exp"]), tz=UTC)
            claims = Claims(
                user_id=str(raw["sub"]),
                role=str(raw.get("role", "")),
                typ=str(raw["typ"]),
                jti=str(raw["jti"]),
                expires_at=exp,
                sid=str(raw.get("sid") or ""),
            )
        except (TypeError, ValueError, OverflowError):
            raise ApiError("UNAUTHORIZED", "invalid token") from None
        if check_expiry and claims.expires_at <= self._clock():
            raise ApiError("TOKEN_EXPIRED", "token expired")
        return claims
