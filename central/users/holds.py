"""Credit holds: part of a balance kept back from spending (a disputed sale's proceeds).

A hold row and `users.held_credits` change in one transaction, and the ledger's debit condition
is `credit_balance - held_credits + amount >= 0` (ledger.py), so a held amount cannot be spent by
any debit however the calls race. A hold does not move money: releasing it frees the amount again;
a reverse of the disputed transfer releases it in the same transaction as the money moving back.

A hold may exceed what the user still has (they spent the proceeds before the dispute opened): then
nothing of their balance can be spent until the dispute is decided."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
from central.direct_sql import DirectPool, HotStatement, Row, Transaction
from central.errors import ApiError
from central.users.clock import Clock, as_utc, iso, utcnow
from central.users.schema import credit_holds, users


@dataclass(frozen=True)
class Hold:
    hold_id: str
    user_id: str
    amount: int
    reference_id: str
    status: str
    created_at: datetime
    released_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "hold_id": self.hold_id,
            "user_id": self.user_id,
            "amount": self.amount,
            "reference_id": self.reference_id,
            "status": self.status,
            "created_at": iso(self.created_at),
            "released_at": iso(self.released_at) if self.released_at else None,
        }


def _hold(row: Row) -> Hold:
    return Hold(
        hold_id=row["hold_id"],
        user_id=row["user_id"],
        amount=int(row["amount"]),
        reference_id=row["reference_id"],
        status=row["status"],
        created_at=as_utc(row["created_at"]),
        released_at=as_utc(row["released_at"]) if row["released_at"] else None,
    )


# A reverse of a disputed transfer runs these in its transaction (ledger.py): built once.
RELEASE = HotStatement(
    credit_holds.update()
    .where(
        credit_holds.c.reference_id == sa.bindparam("p_reference_id"),
        credit_holds.c.status == "ACTIVE",
    )
    .values(status="RELEASED", released_at=sa.bindparam("p_released_at", type_=sa.DateTime(True)))
    .returning(*credit_holds.c)
)
UNHOLD = HotStatement(
    users.update()
    .where(users.c.user_id == sa.bindparam("p_user_id", type_=sa.String))
    .values(held_credits=users.c.held_credits - sa.bindparam("p_amount", type_=sa.BigInteger))
)


async def active_hold(conn: AsyncConnection, reference_id: str) -> Hold | None:
    row = (
        (
            await conn.execute(
                sa.select(credit_holds).where(
                    credit_holds.c.reference_id == reference_id, credit_holds.c.status == "ACTIVE"
                )
            )
        )
        .mappings()
        .first()
    )
    return _hold(row) if row is not None else None


async def release_in(db: Transaction, reference_id: str, now: datetime) -> Hold | None:
    """Inside the caller's transaction: end the ACTIVE hold for `reference_id` (None when there
    is none, e.g. already released by an earlier try)."""
    row = await db.fetchrow(RELEASE, {"p_reference_id": reference_id, "p_released_at": now})
    if row is None:
        return None
    await db.execute(UNHOLD, {"p_user_id": row["user_id"], "p_amount": row["amount"]})
    return _hold(row)


class HoldStore:
    def __init__(self, engine: AsyncEngine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    async def place(self, user_id: str, amount: int, reference_id: str) -> tuple[Hold, bool]:
        """Hold `amount` of the user's credits for `reference_id`; (hold, created). A repeat for a
        reference that already has a live hold answers that hold and holds nothing more."""
        if amount <= 0:
            raise ApiError("VALIDATION_ERROR", "amount: must be > 0", {"field": "amount"})
        now = self.clock()
        hold_id = str(uuid.uuid4())
        try:
            async with self.engine.begin() as conn:
                changed = await conn.execute(
                    users.update()
                    .where(users.c.user_id == user_id)
                    .values(held_credits=users.c.held_credits + amount)
                )
                if changed.rowcount != 1:
                    raise ApiError("USER_NOT_FOUND", "no such user", {"user_id": user_id})
                await conn.execute(
                    credit_holds.insert().values(
                        hold_id=hold_id,
                        user_id=user_id,
                        amount=amount,
                        reference_id=reference_id,
                        status="ACTIVE",
                        created_at=now,
                    )
                )
            return Hold(hold_id, user_id, amount, reference_id, "ACTIVE", now, None), True
        except sa.exc.IntegrityError:
            pass  # the partial unique index: a live hold for this reference exists already
        async with autocommit(self.engine).connect() as conn:
            existing = await active_hold(conn, reference_id)
        if existing is None:
            raise ApiError("SERVICE_UNAVAILABLE", "hold race, retry")
        if (existing.user_id, existing.amount) != (user_id, amount):
            raise ApiError(
                "IDEMPOTENCY_CONFLICT",
                "a different hold exists for this reference",
                {"reference_id": reference_id},
            )
        return existing, False

    async def release(self, reference_id: str) -> Hold | None:
        async with DirectPool.of(self.engine).transaction() as txn:
            return await release_in(txn, reference_id, self.clock())

    async def for_reference(self, reference_id: str) -> list[Hold]:
        async with autocommit(self.engine).connect() as conn:
            rows = (
                (
                    await conn.execute(
                        sa.select(credit_holds)
                        .where(credit_holds.c.reference_id == reference_id)
                        .order_by(credit_holds.c.created_at)
                    )
                )
                .mappings()
                .all()
            )
        return [_hold(r) for r in rows]

    async def held(self, user_id: str) -> int:
        async with autocommit(self.engine).connect() as conn:
            value = await conn.scalar(
                sa.select(users.c.held_credits).where(users.c.user_id == user_id)
            )
        if value is None:
            raise ApiError("USER_NOT_FOUND", "no such user")
        return int(value)
