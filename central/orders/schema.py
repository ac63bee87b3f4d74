"""The orders service's tables and their versioned migrations.

Ids are UUID text (String(36)) so both SQLite and PostgreSQL store them the same way; money is
integer credits (BigInteger); times are timezone-aware UTC.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from central.db import Step, create_tables
from central.orders.states import SEAT_BLOCKING_STATES, OrderStatus, TransferStatus

metadata = sa.MetaData()

Id = sa.String(36)
Stamp = sa.DateTime(timezone=True)


def _one_of(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", Id, primary_key=True),
    sa.Column("user_id", Id, nullable=False, index=True),
    sa.Column("seat_id", Id, nullable=False, index=True),
    sa.Column("event_id", Id, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("credits_charged", sa.BigInteger, nullable=False),
    sa.Column("hold_id", Id, nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("confirmed_at", Stamp, nullable=True),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.CheckConstraint(_one_of("status", [s.value for s in OrderStatus]), name="ck_orders_status"),
    sa.CheckConstraint("credits_charged >= 0", name="ck_orders_credits"),
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("transfer_id", Id, primary_key=True),
    sa.Column("seat_id", Id, nullable=False, index=True),
    sa.Column("seller_user_id", Id, nullable=False, index=True),
    sa.Column("buyer_user_id", Id, nullable=False, index=True),
    sa.Column("initiated_by", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("credits_amount", sa.BigInteger, nullable=False),
    sa.Column("seller_confirmed", sa.Boolean, nullable=False, default=False),
    sa.Column("buyer_confirmed", sa.Boolean, nullable=False, default=False),
    sa.Column("dispute_reason", sa.String(500), nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("completed_at", Stamp, nullable=True),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.CheckConstraint(
        _one_of("status", [s.value for s in TransferStatus]), name="ck_transfers_status"
    ),
    sa.CheckConstraint(_one_of("initiated_by", ["SELLER", "BUYER"]), name="ck_transfers_by"),
    sa.CheckConstraint("credits_amount >= 0", name="ck_transfers_credits"),
)

_active = sa.text(_one_of("status", [s.value for s in SEAT_BLOCKING_STATES]))

# At most one live transfer per seat, enforced by the database so two concurrent initiations cannot
# both win; finished transfers (COMPLETED, FAILED, ...) leave the seat free for the next one. A
# DISPUTED transfer counts as live: its seat cannot be passed on until the dispute is decided.
ONE_ACTIVE_TRANSFER_INDEX = "uq_transfers_one_active_per_seat"
one_active_transfer = sa.Index(
    ONE_ACTIVE_TRANSFER_INDEX,
    transfers.c.seat_id,
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)


async def _disputes_block_the_seat(conn: Any) -> None:
    """Recreate the one-live-transfer index so that it covers DISPUTED too."""
    await conn.execute(sa.text(f"DROP INDEX IF EXISTS {ONE_ACTIVE_TRANSFER_INDEX}"))
    await conn.run_sync(lambda sync: one_active_transfer.create(sync))


STEPS: list[Step] = [
    Step(1, "orders and transfers", create_tables(metadata, "orders", "transfers")),
    Step(2, "orders: a disputed transfer blocks its seat", _disputes_block_the_seat),
]
