"""Top-ups: a user asks to buy credits, a payment provider takes the money, and its confirmation
credits the ledger.

Crediting is one transaction: `UPDATE topups SET status = 'PAID' WHERE topup_id = ? AND status =
'PENDING'` decides (its row count) whether this delivery is the first, and the ledger entry with
the key `topup:<id>` is written in the same transaction (a unique key: even a bug could not write
a second). The amount credited is the top-up's own stored amount, never a figure from the
provider's message. However often and however concurrently a provider repeats its confirmation,
the ledger moves once."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import autocommit
from central.errors import ApiError
from central.users.clock import Clock, as_utc, iso, utcnow
from central.users.ledger import Ledger
from central.users.schema import topups


def ledger_key(topup_id: str) -> str:
    return f"topup:{topup_id}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Topup:
    topup_id: str
    user_id: str
    amount: int
    provider: str
    status: str
    provider_ref: str | None
    checkout_url: str | None
    secret_sha256: str | None
    created_at: datetime
    paid_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "topup_id": self.topup_id,
            "user_id": self.user_id,
            "amount": self.amount,
            "provider": self.provider,
            "status": self.status,
            "checkout_url": self.checkout_url,
            "created_at": iso(self.created_at),
            "paid_at": iso(self.paid_at) if self.paid_at else None,
        }


def _topup(row: Any) -> Topup:
    return Topup(
        topup_id=row.topup_id,
        user_id=row.user_id,
        amount=int(row.amount),
        provider=row.provider,
        status=row.status,
        provider_ref=row.provider_ref,
        checkout_url=row.checkout_url,
        secret_sha256=row.secret_sha256,
        created_at=as_utc(row.created_at),
        paid_at=as_utc(row.paid_at) if row.paid_at else None,
    )


@dataclass(frozen=True)
class Credited:
    topup: Topup
    first: bool  # False: an earlier delivery credited it already
    credit_balance: int


class TopupStore:
    def __init__(self, engine: AsyncEngine, ledger: Ledger, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.ledger = ledger
        self.clock = clock

    async def create(
        self, *, user_id: str, amount: int, provider: str, secret: str | None = None
    ) -> Topup:
        topup_id = str(uuid.uuid4())
        now = self.clock()
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    topups.insert().values(
                        topup_id=topup_id,
                        user_id=user_id,
                        amount=amount,
                        provider=provider,
                        status="PENDING",
                        secret_sha256=secret_hash(secret) if secret else None,
                        created_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            raise ApiError("USER_NOT_FOUND", "no such user", {"user_id": user_id}) from None
        return await self.get(topup_id)

    async def attach_checkout(self, topup_id: str, provider_ref: str, checkout_url: str) -> Topup:
        async with self.engine.begin() as conn:
            await conn.execute(
                topups.update()
                .where(topups.c.topup_id == topup_id)
                .values(provider_ref=provider_ref, checkout_url=checkout_url)
            )
        return await self.get(topup_id)

    async def fail(self, topup_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                topups.update()
                .where(topups.c.topup_id == topup_id, topups.c.status == "PENDING")
                .values(status="FAILED")
            )

    async def find(self, topup_id: str) -> Topup | None:
        async with autocommit(self.engine).connect() as conn:
            row = (
                await conn.execute(sa.select(topups).where(topups.c.topup_id == topup_id))
            ).first()
        return _topup(row) if row is not None else None

    async def get(self, topup_id: str) -> Topup:
        found = await self.find(topup_id)
        if found is None:
            raise ApiError("TOPUP_NOT_FOUND", "no such top-up", {"topup_id": topup_id})
        return found

    def check_secret(self, topup: Topup, secret: str) -> None:
        expected = topup.secret_sha256 or ""
        if not hmac.compare_digest(expected, secret_hash(secret)):
            raise ApiError("TOPUP_NOT_FOUND", "no such top-up", {"topup_id": topup.topup_id})

    async def credit(self, topup_id: str) -> Credited:
        """The provider says this top-up is paid: credit its stored amount, once."""
        topup = await self.get(topup_id)
        now = self.clock()
        async with self.engine.begin() as conn:
            won = await conn.execute(
                topups.update()
                .where(topups.c.topup_id == topup_id, topups.c.status == "PENDING")
                .values(status="PAID", paid_at=now)
            )
            if won.rowcount == 1:
                entry = await self.ledger.apply_in(
                    conn,
                    user_id=topup.user_id,
                    amount=topup.amount,
                    kind="TOPUP",
                    key=ledger_key(topup_id),
                    reference_id=topup_id,
                )
        if won.rowcount == 1:
            return Credited(await self.get(topup_id), True, entry.balance_after)
        settled = await self.get(topup_id)
        if settled.status != "PAID":
            raise ApiError(
                "TOPUP_INVALID_STATE",
                f"the top-up is {settled.status}",
                {"topup_id": topup_id, "status": settled.status},
            )
        return Credited(settled, False, await self.ledger.cached_balance(settled.user_id))
