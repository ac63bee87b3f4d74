"""The credit ledger: append-only entries, each with a unique idempotency key, and the cached
balance on `users` changed in the same transaction.

Why the balance column: `UPDATE users SET credit_balance = credit_balance + :amt WHERE user_id = :u
AND credit_balance + :amt >= 0` is one atomic statement on SQLite and PostgreSQL alike (PostgreSQL
re-checks the WHERE after waiting on the row lock), so its row count decides whether a debit may
happen — never a read followed by a write. The ledger insert in the same transaction hits the unique
key when the call is a repeat, which rolls the balance change back with it. On PostgreSQL the two are
one statement (the UPDATE … RETURNING as a CTE feeding the INSERT), run on the driver: a debit is
one round trip, and a taken key fails the statement as a whole."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
from central.direct_sql import DirectPool, HotStatement, Row, Transaction, in_engine_transaction
from central.errors import ApiError
from central.users.clock import Clock, as_utc, iso, utcnow
from central.users.holds import release_in
from central.users.schema import credit_ledger, users

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    entry_id: str
    user_id: str
    amount: int
    kind: str
    idempotency_key: str
    reference_id: str | None
    balance_after: int
    created_at: str | None

    def public(self, *, replayed: bool) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "user_id": self.user_id,
            "amount": self.amount,
            "kind": self.kind,
            "idempotency_key": self.idempotency_key,
            "reference_id": self.reference_id,
            "credit_balance": self.balance_after,
            "created_at": self.created_at,
            "replayed": replayed,
        }


def _entry(row: Row) -> Entry:
    return Entry(
        entry_id=row["entry_id"],
        user_id=row["user_id"],
        amount=int(row["amount"]),
        kind=row["kind"],
        idempotency_key=row["idempotency_key"],
        reference_id=row["reference_id"],
        balance_after=int(row["balance_after"]),
        created_at=iso(as_utc(row["created_at"])),
    )


# Every debit, refund and grant runs these: built once, run on the driver (central/direct_sql.py).
# Parameters are the entry's column names with `p_` in front.
_ENTRY_COLUMNS = (
    "entry_id",
    "user_id",
    "amount",
    "kind",
    "idempotency_key",
    "reference_id",
    "balance_after",
    "created_at",
)


def _param(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(f"p_{name}", type_=credit_ledger.c[name].type)


def _move(debit: bool) -> sa.Update:
    """The balance moved by p_amount only if there is room, answering the new balance. A debit
    may spend only what no hold (a disputed sale's proceeds) keeps back."""
    amount = _param("amount")
    spendable = users.c.credit_balance - users.c.held_credits if debit else users.c.credit_balance
    return (
        users.update()
        .where(users.c.user_id == _param("user_id"), spendable + amount >= 0)
        .values(credit_balance=users.c.credit_balance + amount)
        .returning(users.c.credit_balance)
    )


def _move_and_append(debit: bool) -> sa.Insert:
    """PostgreSQL: the move and the entry as ONE statement, answering balance_after, no row when
    there was no room. A taken key fails the whole statement, the balance change with it."""
    moved = _move(debit).cte("moved")
    values = [moved.c.credit_balance if c == "balance_after" else _param(c) for c in _ENTRY_COLUMNS]
    return (
        credit_ledger.insert()
        .from_select(list(_ENTRY_COLUMNS), sa.select(*values))
        .returning(credit_ledger.c.balance_after)
        .add_cte(moved)
    )


MOVE = {debit: HotStatement(_move(debit)) for debit in (False, True)}
APPEND = HotStatement(credit_ledger.insert().values(**{c: _param(c) for c in _ENTRY_COLUMNS}))
MOVE_AND_APPEND = {debit: HotStatement(_move_and_append(debit)) for debit in (False, True)}
ENTRY_BY_KEY = HotStatement(
    sa.select(credit_ledger).where(credit_ledger.c.idempotency_key == sa.bindparam("p_key"))
)
ROOM = HotStatement(
    sa.select(users.c.credit_balance, users.c.held_credits).where(
        users.c.user_id == sa.bindparam("p_user_id")
    )
)


class _Replay(Exception):
    """Raised inside a transaction to roll it back when the key turned out to be taken."""


class Ledger:
    def __init__(self, engine: AsyncEngine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.direct = DirectPool.of(engine)
        # PostgreSQL runs the move and the entry as one statement (a data-modifying CTE);
        # SQLite has none, so there they are two statements in one transaction.
        self.one_statement = engine.dialect.name == "postgresql"

    # ----- reads -----
    async def entry(self, key: str) -> Entry | None:
        row = await self.direct.fetchrow(ENTRY_BY_KEY, {"p_key": key})
        return _entry(row) if row is not None else None

    async def balance(self, user_id: str) -> int:
        """The balance as the sum of the ledger: the truth the cached column must agree with."""
        async with autocommit(self.engine).connect() as conn:
            exists = await conn.scalar(sa.select(users.c.user_id).where(users.c.user_id == user_id))
            if exists is None:
                raise ApiError("USER_NOT_FOUND", "no such user")
            total = await conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(credit_ledger.c.amount), 0)).where(
                    credit_ledger.c.user_id == user_id
                )
            )
        return int(total or 0)

    async def history(self, user_id: str, *, page: int, per_page: int) -> tuple[list[Entry], int]:
        """One page of the user's entries, newest first, and how many there are in all."""
        where = credit_ledger.c.user_id == user_id
        query = (
            sa.select(credit_ledger)
            .where(where)
            .order_by(credit_ledger.c.created_at.desc(), credit_ledger.c.entry_id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        async with autocommit(self.engine).connect() as conn:
            exists = await conn.scalar(sa.select(users.c.user_id).where(users.c.user_id == user_id))
            if exists is None:
                raise ApiError("USER_NOT_FOUND", "no such user")
            total = await conn.scalar(
                sa.select(sa.func.count()).select_from(credit_ledger).where(where)
            )
            rows = (await conn.execute(query)).mappings().all()
        return [_entry(r) for r in rows], int(total or 0)

    async def cached_balance(self, user_id: str) -> int:
        async with autocommit(self.engine).connect() as conn:
            value = await conn.scalar(
                sa.select(users.c.credit_balance).where(users.c.user_id == user_id)
            )
        if value is None:
            raise ApiError("USER_NOT_FOUND", "no such user")
        return int(value)

    async def count_entries(self) -> int:
        async with autocommit(self.engine).connect() as conn:
            return int(
                await conn.scalar(sa.select(sa.func.count()).select_from(credit_ledger)) or 0
            )

    # ----- writes -----
    @staticmethod
    def _check_same(entry: Entry, user_id: str, amount: int, kind: str) -> None:
        if (entry.user_id, entry.amount, entry.kind) != (user_id, amount, kind):
            raise ApiError(
                "IDEMPOTENCY_CONFLICT",
                "this idempotency key was used for a different entry",
                {"idempotency_key": entry.idempotency_key},
            )

    async def _apply(
        self,
        db: Transaction,
        *,
        user_id: str,
        amount: int,
        kind: str,
        key: str,
        reference_id: str | None,
    ) -> Entry:
        """Move the balance (conditionally) and append the entry, inside `db`'s transaction (on
        PostgreSQL also alone: it is one statement there). Raises _Replay when the key is taken
        (the balance change is undone with the statement, or with `db`'s transaction),
        INSUFFICIENT_CREDITS or USER_NOT_FOUND when nothing moved."""
        now = self.clock()
        entry_id = str(uuid.uuid4())
        params = {
            "p_entry_id": entry_id,
            "p_user_id": user_id,
            "p_amount": amount,
            "p_kind": kind,
            "p_idempotency_key": key,
            "p_reference_id": reference_id,
            "p_created_at": now,
        }
        try:
            balance_after = await self._move_and_append(db, params, debit=amount < 0)
        except sa.exc.IntegrityError:
            # Another call with this key committed first.
            raise _Replay() from None
        if balance_after is None:
            raise await self._refusal(db, user_id, amount)
        return Entry(
            entry_id=entry_id,
            user_id=user_id,
            amount=amount,
            kind=kind,
            idempotency_key=key,
            reference_id=reference_id,
            balance_after=balance_after,
            created_at=iso(now),
        )

    async def _move_and_append(
        self, db: Transaction, params: dict[str, Any], *, debit: bool
    ) -> int | None:
        """The balance after the entry; None when there was no room (nothing written)."""
        if self.one_statement:
            row = await db.fetchrow(MOVE_AND_APPEND[debit], params)
            return None if row is None else int(row["balance_after"])
        row = await db.fetchrow(MOVE[debit], params)
        if row is None:
            return None
        balance_after = int(row["credit_balance"])
        await db.execute(APPEND, {**params, "p_balance_after": balance_after})
        return balance_after

    @staticmethod
    async def _refusal(db: Transaction, user_id: str, amount: int) -> ApiError:
        """Why nothing moved: no such user, or not enough spendable credits."""
        current = await db.fetchrow(ROOM, {"p_user_id": user_id})
        if current is None:
            return ApiError("USER_NOT_FOUND", "no such user", {"user_id": user_id})
        details = {"current_balance": int(current["credit_balance"]), "required": -amount}
        if current["held_credits"]:
            details["held_credits"] = int(current["held_credits"])
        return ApiError(
            "INSUFFICIENT_CREDITS", "not enough credits", {**details, "user_id": user_id}
        )

    async def _apply_alone(
        self, *, user_id: str, amount: int, kind: str, key: str, reference_id: str | None
    ) -> Entry:
        """One entry in a transaction of its own: on PostgreSQL a single autocommit statement."""
        if self.one_statement:
            return await self._apply(
                self.direct,
                user_id=user_id,
                amount=amount,
                kind=kind,
                key=key,
                reference_id=reference_id,
            )
        async with self.direct.transaction() as txn:
            return await self._apply(
                txn, user_id=user_id, amount=amount, kind=kind, key=key, reference_id=reference_id
            )

    async def apply_in(
        self,
        conn: AsyncConnection,
        *,
        user_id: str,
        amount: int,
        kind: str,
        key: str,
        reference_id: str | None,
    ) -> Entry:
        """One entry inside the caller's transaction (which decided already that it is the
        first): a taken key is a conflict here, and the caller's transaction rolls back."""
        try:
            return await self._apply(
                in_engine_transaction(conn),
                user_id=user_id,
                amount=amount,
                kind=kind,
                key=key,
                reference_id=reference_id,
            )
        except _Replay:
            raise ApiError(
                "IDEMPOTENCY_CONFLICT", "ledger key already used", {"idempotency_key": key}
            ) from None

    async def post(
        self, *, user_id: str, amount: int, kind: str, key: str, reference_id: str | None = None
    ) -> tuple[Entry, bool]:
        """Append one entry; returns (entry, replayed). A repeat with the same key changes nothing
        and returns the first entry; the same key for another user/amount/kind is a conflict.

        The write is tried first and the key looked up only when it wrote nothing: a first call
        (nearly every call) is one statement on PostgreSQL. A refused write that turns out to be
        a repeat answers as a repeat, as if the key had been looked up first."""
        if amount == 0:
            raise ApiError("VALIDATION_ERROR", "amount: must not be 0", {"field": "amount"})
        try:
            entry = await self._apply_alone(
                user_id=user_id, amount=amount, kind=kind, key=key, reference_id=reference_id
            )
        except _Replay:
            existing = await self.entry(key)
            if existing is None:  # the winner is not visible: should not happen, say so
                raise ApiError("SERVICE_UNAVAILABLE", "idempotency race, retry") from None
        except ApiError:
            existing = await self.entry(key)
            if existing is None:
                raise
        else:
            log.info(
                "ledger entry",
                extra={"fields": {"user_id": user_id, "amount": amount, "kind": kind}},
            )
            return entry, False
        self._check_same(existing, user_id, amount, kind)
        return existing, True

    async def transfer(
        self,
        *,
        from_user_id: str,
        to_user_id: str,
        amount: int,
        key: str,
        reference_id: str | None = None,
        release_hold: str | None = None,
    ) -> tuple[int, int, bool]:
        """Debit and credit in ONE transaction, as entries `key:debit` and `key:credit`.
        Returns (from_balance, to_balance, replayed) as they were right after the transfer.
        `release_hold` names a hold reference ended in the same transaction (a disputed sale's
        proceeds going back): the money is either still held or gone back, never spendable."""
        if amount <= 0:
            raise ApiError("VALIDATION_ERROR", "amount: must be > 0", {"field": "amount"})
        if from_user_id == to_user_id:
            raise ApiError("SELF_TRANSFER", "cannot transfer to the same user")
        debit_key, credit_key = f"{key}:debit", f"{key}:credit"
        for _ in range(2):
            debit = await self.entry(debit_key)
            credit = await self.entry(credit_key)
            if debit is not None and credit is not None:
                self._check_same(debit, from_user_id, -amount, "TRANSFER_OUT")
                self._check_same(credit, to_user_id, amount, "TRANSFER_IN")
                return debit.balance_after, credit.balance_after, True
            if debit is not None or credit is not None:
                # Half a pair cannot come from us (both are written together); the key was used
                # by a plain entry call.
                raise ApiError(
                    "IDEMPOTENCY_CONFLICT",
                    "this idempotency key was used for a different entry",
                    {"idempotency_key": key},
                )
            legs = [
                (from_user_id, -amount, "TRANSFER_OUT", debit_key),
                (to_user_id, amount, "TRANSFER_IN", credit_key),
            ]
            # Lock the two rows in one fixed order so opposite transfers cannot deadlock.
            legs.sort(key=lambda leg: leg[0])
            try:
                async with self.direct.transaction() as txn:
                    if release_hold is not None:
                        await release_in(txn, release_hold, self.clock())
                    results = {}
                    for user_id, amt, kind, leg_key in legs:
                        results[kind] = await self._apply(
                            txn,
                            user_id=user_id,
                            amount=amt,
                            kind=kind,
                            key=leg_key,
                            reference_id=reference_id,
                        )
                return (
                    results["TRANSFER_OUT"].balance_after,
                    results["TRANSFER_IN"].balance_after,
                    False,
                )
            except _Replay:
                continue  # a concurrent call with this key won: answer as a replay
        raise ApiError("SERVICE_UNAVAILABLE", "idempotency race, retry")
