"""The orders service's purchase-path statements, built once (central/direct_sql.py): every
purchase creates an order and moves it at least once, and on PostgreSQL each statement built and
run through SQLAlchemy's async engine cost several times its driver cost in this process's CPU.
Parameter names start with `p_`; the shapes that vary (which states a target is reached from,
which columns a move sets) are built once per shape."""

from __future__ import annotations

import functools

import sqlalchemy as sa

from central.direct_sql import HotStatement
from central.orders.schema import orders, transfers
from central.orders.states import SEAT_BLOCKING_STATES, OrderStatus, TransferStatus

# Ids and values the caller gives a new order or transfer (the rest is set by the create itself).
ORDER_INSERTED = ("order_id", "user_id", "seat_id", "event_id", "credits_charged", "hold_id")
TRANSFER_INSERTED = (
    "transfer_id",
    "seat_id",
    "seller_user_id",
    "buyer_user_id",
    "credits_amount",
    "initiated_by",
)


def _param(table: sa.Table, column: str) -> sa.BindParameter[object]:
    """`p_<column>`, typed as the column so SQLite's engine path converts it as before."""
    return sa.bindparam(f"p_{column}", type_=table.c[column].type)


@functools.cache
def row_of(table: sa.Table, key: str) -> HotStatement:
    """The row whose `key` is p_<key>."""
    return HotStatement(sa.select(table).where(table.c[key] == _param(table, key)))


ORDER_ROW = row_of(orders, "order_id")

# RETURNING answers the stored row with the insert itself: no second statement, no transaction.
# confirmed_at and reason are left out, so NULL.
CREATE_ORDER = HotStatement(
    orders.insert()
    .values(
        status=OrderStatus.PENDING.value,
        created_at=_param(orders, "created_at"),
        updated_at=_param(orders, "updated_at"),
        **{name: _param(orders, name) for name in ORDER_INSERTED},
    )
    .returning(*orders.c)
)

TRANSFER_ROW = row_of(transfers, "transfer_id")

# completed_at is left out, so NULL.
CREATE_TRANSFER = HotStatement(
    transfers.insert()
    .values(
        status=TransferStatus.INITIATED.value,
        seller_confirmed=False,
        buyer_confirmed=False,
        created_at=_param(transfers, "created_at"),
        updated_at=_param(transfers, "updated_at"),
        **{name: _param(transfers, name) for name in TRANSFER_INSERTED},
    )
    .returning(*transfers.c)
)

# The transfer that holds the seat (the one-live-transfer index allows at most one).
LIVE_TRANSFER_OF_SEAT = HotStatement(
    sa.select(transfers.c.transfer_id, transfers.c.status).where(
        transfers.c.seat_id == _param(transfers, "seat_id"),
        sa.or_(*(transfers.c.status == s.value for s in SEAT_BLOCKING_STATES)),
    )
)


@functools.cache
def confirm(flag: str) -> HotStatement:
    """Set one party's flag (and p_updated_at) only while the transfer awaits OTPs; answers the
    changed row."""
    return HotStatement(
        transfers.update()
        .where(
            transfers.c.transfer_id == _param(transfers, "transfer_id"),
            transfers.c.status == TransferStatus.PENDING_OTP.value,
        )
        .values({flag: True, "updated_at": _param(transfers, "updated_at")})
        .returning(*transfers.c)
    )


@functools.cache
def move(
    table: sa.Table, key: str, to: str, sources: tuple[str, ...], columns: tuple[str, ...]
) -> HotStatement:
    """Set the row's status to `to` (and `columns` from p_<name>) only while it is in one of the
    `sources`, answering the changed row: the database decides the transition in one statement.
    OR of equalities, not IN: a prepared statement has one text (direct_sql.py)."""
    allowed = sa.or_(sa.false(), *(table.c.status == s for s in sources))
    return HotStatement(
        table.update()
        .where(table.c[key] == _param(table, key), allowed)
        .values(status=to, **{name: _param(table, name) for name in columns})
        .returning(*table.c)
    )
