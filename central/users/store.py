"""Accounts, revoked tokens and login failures in SQL. Each state change is one conditional
statement or one transaction; no read-then-write decides anything."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
from central.direct_sql import DirectPool, HotStatement
from central.errors import ApiError
from central.users.clock import Clock, as_utc, iso, utcnow
from central.users.schema import credit_ledger, login_attempts, revoked_tokens, users

log = logging.getLogger(__name__)

LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW = timedelta(minutes=15)
# How far back each poll of the revocation feed reads again (longer than any commit takes).
FEED_OVERLAP = timedelta(seconds=5)


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    phone: str | None
    password_hash: str
    role: str
    is_flagged: bool
    is_verified: bool
    credit_balance: int
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """What the API shows: never the password hash."""
        return {
            "user_id": self.user_id,
            "email": self.email,
            "phone": self.phone,
            "role": self.role,
            "is_flagged": self.is_flagged,
            "is_verified": self.is_verified,
            "credit_balance": self.credit_balance,
            "created_at": iso(self.created_at),
        }


def session_key(sid: str) -> str:
    """A revoked session shares the revoked-token table: its key cannot collide with a jti
    (those are bare hex)."""
    return f"sid:{sid}"


def _revocation_keys(jti: str, sid: str) -> list[str]:
    return [jti, session_key(sid)] if sid else [jti]


def _upsert(dialect: str) -> Any:
    """The dialect's INSERT … ON CONFLICT construct (SQLite and PostgreSQL spell it alike)."""
    if dialect == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _user(row: Any) -> User:
    """A users row read by column name (SQLAlchemy's Row or mapping, or a driver's row)."""
    if isinstance(row, sa.Row):
        row = row._mapping
    return User(
        user_id=row["user_id"],
        email=row["email"],
        phone=row["phone"],
        password_hash=row["password_hash"],
        role=row["role"],
        is_flagged=bool(row["is_flagged"]),
        is_verified=bool(row["is_verified"]),
        credit_balance=int(row["credit_balance"]),
        created_at=as_utc(row["created_at"]),
    )


async def fetch_user(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(sa.select(users).where(users.c.user_id == user_id))).first()
    return _user(row) if row is not None else None


# Asked on every purchase and authenticated request: built once (central/direct_sql.py)
USER_BY_ID = HotStatement(sa.select(users).where(users.c.user_id == sa.bindparam("p_user_id")))


def _token_holder_statement(with_session: bool) -> HotStatement:
    """The user and whether the token's jti (or its session) is revoked, in one statement."""
    keys = revoked_tokens.c.jti == sa.bindparam("p_jti")
    if with_session:  # OR of equalities: a HotStatement holds no IN list
        keys = sa.or_(keys, revoked_tokens.c.jti == sa.bindparam("p_sid_key"))
    revoked = sa.select(revoked_tokens.c.jti).where(keys).exists().label("revoked")
    return HotStatement(
        sa.select(users, revoked).where(users.c.user_id == sa.bindparam("p_user_id"))
    )


TOKEN_HOLDER = {
    with_session: _token_holder_statement(with_session) for with_session in (False, True)
}


class UserStore:
    def __init__(self, engine: AsyncEngine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.direct = DirectPool.of(engine)

    async def create_user(
        self,
        *,
        email: str,
        phone: str | None,
        password_hash: str,
        role: str = "customer",
        is_flagged: bool = False,
        verified: bool = False,
        credits: int = 0,
    ) -> User:
        """One transaction: the user and, when it starts with credits, the GRANT entry that
        explains them (the ledger stays the whole truth about every balance)."""
        user_id = str(uuid.uuid4())
        now = self.clock()
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    users.insert().values(
                        user_id=user_id,
                        email=email.lower(),
                        phone=phone,
                        password_hash=password_hash,
                        role=role,
                        is_flagged=is_flagged,
                        is_verified=verified,
                        credit_balance=credits,
                        created_at=now,
                    )
                )
                if credits:
                    await conn.execute(
                        credit_ledger.insert().values(
                            entry_id=str(uuid.uuid4()),
                            user_id=user_id,
                            amount=credits,
                            kind="GRANT",
                            idempotency_key=f"register:{user_id}",
                            reference_id=user_id,
                            balance_after=credits,
                            created_at=now,
                        )
                    )
                user = await fetch_user(conn, user_id)
        except sa.exc.IntegrityError:
            # The unique index on e-mail decides a race between two registrations.
            raise ApiError("EMAIL_ALREADY_EXISTS", "an account with this e-mail exists") from None
        assert user is not None
        return user

    async def get(self, user_id: str) -> User:
        row = await self.direct.fetchrow(USER_BY_ID, {"p_user_id": user_id})
        if row is None:
            raise ApiError("USER_NOT_FOUND", "no such user")
        return _user(row)

    async def token_holder(self, user_id: str, jti: str, sid: str = "") -> tuple[User | None, bool]:
        """The token's user as it is now, and whether the token (or its session) was revoked:
        one statement, as every authenticated request asks it."""
        params = {"p_user_id": user_id, "p_jti": jti}
        if sid:
            params["p_sid_key"] = session_key(sid)
        row = await self.direct.fetchrow(TOKEN_HOLDER[bool(sid)], params)
        if row is None:
            return None, False
        return _user(row), bool(row["revoked"])

    async def find_by_email(self, email: str) -> User | None:
        async with autocommit(self.engine).connect() as conn:
            row = (
                await conn.execute(sa.select(users).where(users.c.email == email.lower()))
            ).first()
        return _user(row) if row is not None else None

    async def search(self, email_part: str | None, limit: int) -> list[User]:
        """Users whose e-mail contains the text (case-insensitive: e-mails are stored lower-case),
        newest first; every user when no text is given."""
        query = sa.select(users).order_by(users.c.created_at.desc(), users.c.user_id).limit(limit)
        if email_part:
            escaped = (
                email_part.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            )
            query = query.where(users.c.email.like(f"%{escaped}%", escape="\\"))
        async with autocommit(self.engine).connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_user(r) for r in rows]

    async def update(self, user_id: str, *, is_flagged: bool | None, role: str | None) -> User:
        values: dict[str, Any] = {}
        if is_flagged is not None:
            values["is_flagged"] = is_flagged
        if role is not None:
            values["role"] = role
        if values:
            values["changed_at"] = self.clock()  # the orchestrators' caches of this user end
        async with self.engine.begin() as conn:
            if values:
                await conn.execute(users.update().where(users.c.user_id == user_id).values(values))
            user = await fetch_user(conn, user_id)
        if user is None:
            raise ApiError("USER_NOT_FOUND", "no such user")
        return user

    async def mark_verified(self, user_id: str) -> User:
        async with self.engine.begin() as conn:
            await conn.execute(
                users.update().where(users.c.user_id == user_id).values(is_verified=True)
            )
            user = await fetch_user(conn, user_id)
        if user is None:
            raise ApiError("USER_NOT_FOUND", "no such user")
        return user

    async def count_users(self) -> int:
        async with autocommit(self.engine).connect() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(users)) or 0)

    # ----- login attempts (per account, in the database so every process counts them) -----
    async def claim_login_attempt(self, email: str) -> bool:
        """Count this attempt as a failure before the password is checked, and say whether the
        check may happen: one upsert, whose returned count is the decision. Parallel guesses
        each get their own number, so at most LOGIN_FAILURE_LIMIT of them reach the hash per
        window, whatever their timing (and the right password is refused once locked)."""
        now = self.clock()
        since = now - LOGIN_FAILURE_WINDOW
        key = email.lower()
        stale = login_attempts.c.window_started_at <= since
        insert = _upsert(self.engine.dialect.name)(login_attempts).values(
            email=key, window_started_at=now, failures=1
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[login_attempts.c.email],
            set_={
                "failures": sa.case((stale, 1), else_=login_attempts.c.failures + 1),
                "window_started_at": sa.case(
                    (stale, now), else_=login_attempts.c.window_started_at
                ),
            },
        ).returning(login_attempts.c.failures)
        async with self.engine.begin() as conn:
            failures = int((await conn.execute(stmt)).scalar_one())
        return failures <= LOGIN_FAILURE_LIMIT

    async def login_succeeded(self, email: str) -> None:
        """The right password: take back this attempt's own count. Earlier failures in the
        window stay counted, so a success among a burst of guesses gives the guessers nothing."""
        async with self.engine.begin() as conn:
            await conn.execute(
                login_attempts.update()
                .where(login_attempts.c.email == email.lower(), login_attempts.c.failures > 0)
                .values(failures=login_attempts.c.failures - 1)
            )

    # ----- revoked tokens -----
    async def revoke(self, jti: str, expires_at: datetime) -> None:
        now = self.clock()
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    revoked_tokens.insert().values(jti=jti, expires_at=expires_at, revoked_at=now)
                )
        except sa.exc.IntegrityError:
            pass  # already revoked: logging out twice is the same as once
        # An expired token fails on its own; its revocation row is no longer needed.
        async with self.engine.begin() as conn:
            await conn.execute(revoked_tokens.delete().where(revoked_tokens.c.expires_at < now))

    async def changes_since(
        self, since: datetime | None
    ) -> tuple[datetime, list[tuple[str, datetime]], list[str]]:
        """(now, revocations, users whose role or flag changed) since ``since`` — every
        revocation still in force when ``since`` is None. A little before ``since`` is read again
        (FEED_OVERLAP): a change stamped just before a poll but committed just after it is seen
        by the next one. The orchestrators poll this to check access tokens themselves."""
        now = self.clock()
        async with autocommit(self.engine).connect() as conn:
            if since is None:
                rows = await conn.execute(
                    sa.select(revoked_tokens.c.jti, revoked_tokens.c.expires_at).where(
                        revoked_tokens.c.expires_at > now
                    )
                )
                return now, [(r.jti, r.expires_at) for r in rows], []
            after = since - FEED_OVERLAP
            rows = await conn.execute(
                sa.select(revoked_tokens.c.jti, revoked_tokens.c.expires_at).where(
                    revoked_tokens.c.revoked_at > after
                )
            )
            revoked = [(r.jti, r.expires_at) for r in rows]
            changed = await conn.scalars(
                sa.select(users.c.user_id).where(users.c.changed_at > after)
            )
            return now, revoked, list(changed)

    async def is_revoked(self, jti: str, sid: str = "") -> bool:
        async with autocommit(self.engine).connect() as conn:
            found = await conn.scalar(
                sa.select(revoked_tokens.c.jti).where(
                    revoked_tokens.c.jti.in_(_revocation_keys(jti, sid))
                )
            )
        return found is not None
