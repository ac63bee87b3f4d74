"""The credit ledger: append-only entries, each with a unique idempotency key, and the cached
balance on `users` changed in the same transaction.

Why the balance column: `UPDATE users SET credit_balance = credit_balance + :amt WHERE user_id = :u
AND credit_balance + :amt >= 0` is one atomic statement on SQLite and PostgreSQL alike (PostgreSQL
re-checks the WHERE after waiting on the row lock), so its row count decides whether a debit may
happen — never a read followed by a write. The ledger insert in the same transaction hits the unique
key when the call is a repeat, which rolls the balance change back with it."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
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


def _entry(row: sa.Row[Any]) -> Entry:
    return Entry(
        entry_id=row.entry_id,
        user_id=row.user_id,
        amount=int(row.amount),
        kind=row.kind,
        idempotency_key=row.idempotency_key,
        reference_id=row.reference_id,
        balance_after=int(row.balance_after),
        created_at=iso(as_utc(row.created_at)),
    )


class _Replay(Exception):
    """Raised inside a transaction to roll it back when the key turned out to be taken."""


class Ledger:
    def __init__(self, engine: AsyncEngine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    # ----- reads -----
    async def entry(self, key: str) -> Entry | None:
        async with autocommit(self.engine).connect() as conn:
            return await self._entry(conn, key)

    @staticmethod
    async def _entry(conn: AsyncConnection, key: str) -> Entry | None:
        row = (
            await conn.execute(
                sa.select(credit_ledger).where(credit_ledger.c.idempotency_key == key)
            )
        ).first()
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
            rows = (await conn.execute(query)).all()
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
        conn: AsyncConnection,
        *,
        user_id: str,
        amount: int,
        kind: str,
        key: str,
        reference_id: str | None,
    ) -> Entry:
        """Inside the caller's transaction: move the balance (conditionally) and append the entry."""
        # A debit may spend only what no hold (a disputed sale's proceeds) keeps back.
        spendable = users.c.credit_balance - users.c.held_credits
        room = spendable + amount >= 0 if amount < 0 else users.c.credit_balance + amount >= 0
        changed = await conn.execute(
            users.update()
            .where(users.c.user_id == user_id, room)
            .values(credit_balance=users.c.credit_balance + amount)
        )
        if changed.rowcount != 1:
            current = (
                await conn.execute(
                    sa.select(users.c.credit_balance, users.c.held_credits).where(
                        users.c.user_id == user_id
                    )
                )
            ).first()
            if current is None:
                raise ApiError("USER_NOT_FOUND", "no such user", {"user_id": user_id})
            details = {"current_balance": int(current.credit_balance), "required": -amount}
            if current.held_credits:
                details["held_credits"] = int(current.held_credits)
            raise ApiError(
                "INSUFFICIENT_CREDITS", "not enough credits", {**details, "user_id": user_id}
            )
        balance_after = await conn.scalar(
            sa.select(users.c.credit_balance).where(users.c.user_id == user_id)
        )
        entry = Entry(
            entry_id=str(uuid.uuid4()),
            user_id=user_id,
            amount=amount,
            kind=kind,
            idempotency_key=key,
            reference_id=reference_id,
            balance_after=int(balance_after or 0),
            created_at=None,
        )
        now = self.clock()
        try:
            await conn.execute(
                credit_ledger.insert().values(
                    entry_id=entry.entry_id,
                    user_id=user_id,
                    amount=amount,
                    kind=kind,
                    idempotency_key=key,
                    reference_id=reference_id,
                    balance_after=entry.balance_after,
                    created_at=now,
                )
            )
        except sa.exc.IntegrityError:
            # Another call with this key committed first: undo our balance change with the rest.
            raise _Replay() from None
        return dataclasses.replace(entry, created_at=iso(now))

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
                conn, user_id=user_id, amount=amount, kind=kind, key=key, reference_id=reference_id
            )
        except _Replay:
            raise ApiError(
                "IDEMPOTENCY_CONFLICT", "ledger key already used", {"idempotency_key": key}
            ) from None

    async def post(
        self, *, user_id: str, amount: int, kind: str, key: str, reference_id: str | None = None
    ) -> tuple[Entry, bool]:
        """Append one entry; returns (entry, replayed). A repeat with the same key changes nothing
        and returns the first entry; the same key for another user/amount/kind is a conflict."""
        if amount == 0:
            raise ApiError("VALIDATION_ERROR", "amount: must not be 0", {"field": "amount"})
        existing = await self.entry(key)
        if existing is None:
            try:
                async with self.engine.begin() as conn:
                    entry = await self._apply(
                        conn,
                        user_id=user_id,
                        amount=amount,
                        kind=kind,
                        key=key,
                        reference_id=reference_id,
                    )
                log.info(
                    "ledger entry",
                    extra={"fields": {"user_id": user_id, "amount": amount, "kind": kind}},
                )
                return entry, False
            except _Replay:
                existing = await self.entry(key)
                if existing is None:  # the winner is not visible: should not happen, say so
                    raise ApiError("SERVICE_UNAVAILABLE", "idempotency race, retry") from None
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
                async with self.engine.begin() as conn:
                    if release_hold is not None:
                        await release_in(conn, release_hold, self.clock())
                    results = {}
                    for user_id, amt, kind, leg_key in legs:
                        results[kind] = await self._apply(
                            conn,
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
