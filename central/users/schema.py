"""The users service's tables and the migration steps that create them.

Times are stored as UTC. `users.credit_balance` is a cache of SUM(credit_ledger.amount), changed only
in the same transaction as the ledger insert it mirrors; its conditional update is what decides
whether a debit is allowed (see ledger.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from central.db import Step, create_tables

metadata = sa.MetaData()

ROLES = ("customer", "staff", "admin")
LEDGER_KINDS = (
    "GRANT",
    "PURCHASE",
    "REFUND",
    "TRANSFER_OUT",
    "TRANSFER_IN",
    "REVERSAL",
    "TOPUP",
)
OTP_PURPOSES = ("registration", "purchase", "transfer")

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("phone", sa.String(20), nullable=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.String(16), nullable=False, server_default="customer"),
    sa.Column("is_flagged", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("credit_balance", sa.BigInteger, nullable=False, server_default="0"),
    # Added by migration step 2 (a column of the table, so queries can use it).
    sa.Column("held_credits", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Added by migration step 5: when the role or flag last changed, for the orchestrators'
    # change feed (GET /auth/revocations): they cache who a token's holder is.
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_users_changed_at", "changed_at"),
    sa.CheckConstraint("role IN ('customer', 'staff', 'admin')", name="ck_users_role"),
    # The last line of defence: even a buggy statement cannot make a balance negative.
    sa.CheckConstraint("credit_balance >= 0", name="ck_users_balance_nonnegative"),
)

credit_ledger = sa.Table(
    "credit_ledger",
    metadata,
    sa.Column("entry_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    # Unique: a repeated call with the same key can never write a second entry.
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("reference_id", sa.String(200), nullable=True),
    # The balance right after this entry, so a replay answers exactly what the first call did.
    sa.Column("balance_after", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("amount <> 0", name="ck_ledger_amount_nonzero"),
    sa.Index("ix_credit_ledger_user", "user_id"),
)

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    # Added by migration step 5: when, for the orchestrators' revocation feed.
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_revoked_tokens_expires", "expires_at"),
    sa.Index("ix_revoked_tokens_revoked_at", "revoked_at"),
)

otp_challenges = sa.Table(
    "otp_challenges",
    metadata,
    sa.Column("challenge_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("reference_id", sa.String(36), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts_left", sa.Integer, nullable=False),
    sa.Column("resends", sa.Integer, nullable=False, server_default="0"),
    sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("superseded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # At most one current challenge per (user, purpose, reference): two racing "new challenge"
    # calls cannot both leave a live code behind.
    sa.Index(
        "ux_otp_current",
        "user_id",
        "purpose",
        "reference_id",
        unique=True,
        sqlite_where=sa.text("superseded = 0"),
        postgresql_where=sa.text("superseded = false"),
    ),
)

# The first build's failure log, created by step 1 and dropped by step 2 (kept apart from
# `metadata`, which lists only the live tables).
_step1_only = sa.MetaData()
login_failures = sa.Table(
    "login_failures",
    _step1_only,
    sa.Column("failure_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_login_failures_email_at", "email", "failed_at"),
)

# One row per account (keyed by the lower-cased e-mail: an account that does not exist is limited
# the same way, so the limiter does not reveal which e-mails are registered). Every attempt bumps
# `failures` BEFORE the password is checked, in one upsert whose returned count decides whether
# the check happens at all: parallel guesses cannot all read "under the limit" (the row of
# login_failures it replaces was counted, then the hash checked, then the failure written).
login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("email", sa.String(254), primary_key=True),
    sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
)


async def _replace_login_failures(conn: AsyncConnection) -> None:
    await create_tables(metadata, "login_attempts")(conn)
    await conn.execute(sa.text("DROP TABLE IF EXISTS login_failures"))


async def _create_step1(conn: AsyncConnection) -> None:
    await create_tables(metadata, "users", "credit_ledger", "revoked_tokens", "otp_challenges")(
        conn
    )
    await create_tables(_step1_only, "login_failures")(conn)


# ----- money in, and money held (migration step 2) -----

topups = sa.Table(
    "topups",
    metadata,
    sa.Column("topup_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.user_id"), nullable=False),
    # What we credit when the provider says "paid": ours, never the amount in the provider's event.
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The provider's own id (a Stripe Checkout Session id); the demo provider's is its own.
    sa.Column("provider_ref", sa.String(255), nullable=True),
    sa.Column("checkout_url", sa.Text, nullable=True),
    # The demo checkout page proves it was handed the URL with this secret (only its hash kept).
    sa.Column("secret_sha256", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("amount > 0", name="ck_topups_amount_positive"),
    sa.CheckConstraint("status IN ('PENDING', 'PAID', 'FAILED')", name="ck_topups_status"),
    sa.Index("ix_topups_user", "user_id"),
)

credit_holds = sa.Table(
    "credit_holds",
    metadata,
    sa.Column("hold_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    # What the hold is for (a disputed transfer's id).
    sa.Column("reference_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # ACTIVE | RELEASED
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("amount > 0", name="ck_holds_amount_positive"),
    # One live hold per reference: a repeated "open" cannot hold the money twice.
    sa.Index(
        "ux_credit_holds_active",
        "reference_id",
        unique=True,
        sqlite_where=sa.text("status = 'ACTIVE'"),
        postgresql_where=sa.text("status = 'ACTIVE'"),
    ),
)


async def _add_held_credits(conn: Any) -> None:
    """`users.held_credits`: the sum of the user's ACTIVE holds, kept in the same transaction as
    the hold rows; a debit must leave credit_balance - held_credits >= 0 (see ledger.py)."""
    columns = await conn.run_sync(
        lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("users")]
    )
    if "held_credits" not in columns:
        await conn.execute(
            sa.text("ALTER TABLE users ADD COLUMN held_credits BIGINT NOT NULL DEFAULT 0")
        )


async def _add_change_times(conn: Any) -> None:
    """`revoked_tokens.revoked_at` and `users.changed_at`: what the revocation feed reads."""
    for table, column, index in (
        ("revoked_tokens", "revoked_at", "ix_revoked_tokens_revoked_at"),
        ("users", "changed_at", "ix_users_changed_at"),
    ):
        columns = await conn.run_sync(
            lambda sync, t=table: [c["name"] for c in sa.inspect(sync).get_columns(t)]
        )
        if column not in columns:
            kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
            await conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
        await conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})"))


STEPS = [
    Step(
        1,
        "users: users, credit ledger, revoked tokens, OTP challenges, login failures",
        _create_step1,
    ),
    Step(2, "users: login attempts counted before the password check", _replace_login_failures),
    Step(3, "users: held credits", _add_held_credits),
    Step(4, "users: top-ups and credit holds", create_tables(metadata, "topups", "credit_holds")),
    Step(5, "users: revocation and change times (the orchestrators' feed)", _add_change_times),
]
