"""Inventory tables, their migrations, and the manifest cursor (`updated_seq`).

Times are unix milliseconds (UTC) in BIGINT columns: the same comparison works on SQLite and
PostgreSQL, and the wire format (proto) already speaks milliseconds.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from central.db import Step, create_tables

metadata = sa.MetaData()

STATUSES = ("AVAILABLE", "HELD", "SOLD", "CHECKED_IN")
# How the last hold of a seat ended; lets ConfirmSeat tell HOLD_EXPIRED from SEAT_NOT_HELD after
# the sweeper cleared the hold, and recognise a repeated confirm that already took effect.
HOLD_OUTCOMES = ("EXPIRED", "RELEASED", "SOLD")

SEQ_NAME = "seats_updated_seq"

seats = sa.Table(
    "seats",
    metadata,
    sa.Column("seat_id", sa.String(36), primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("row", sa.String(16), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="AVAILABLE"),
    sa.Column("owner_user_id", sa.String(36)),
    sa.Column("owner_epoch", sa.Integer, nullable=False, server_default="0"),
    # bumped each time an owner certifies a (new) phone for TR2 codes; codes carry the serial
    sa.Column("device_serial", sa.Integer, nullable=False, server_default="0"),
    sa.Column("hold_id", sa.String(36)),
    sa.Column("held_by_user_id", sa.String(36)),
    sa.Column("held_until_ms", sa.BigInteger),
    sa.Column("last_hold_id", sa.String(36)),
    sa.Column("last_hold_outcome", sa.String(16)),
    sa.Column("checked_in_at_ms", sa.BigInteger),
    sa.Column("checked_in_gate_id", sa.String(36)),
    sa.Column("checked_in_scan_id", sa.String(36)),
    sa.Column("updated_seq", sa.BigInteger, nullable=False),
    # The owner epoch whose ticket was last refunded (0: never). Codes of that epoch or older
    # answer CANCELLED, not TRANSFERRED (migration step 3 adds it to older databases).
    sa.Column("refunded_epoch", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("event_id", "row", "number", name="uq_seats_event_row_number"),
    sa.CheckConstraint(f"status IN {STATUSES}", name="ck_seats_status"),
    sa.CheckConstraint(
        "last_hold_outcome IS NULL OR last_hold_outcome IN ('EXPIRED', 'RELEASED', 'SOLD')",
        name="ck_seats_last_hold_outcome",
    ),
    sa.Index("ix_seats_event_id", "event_id"),
    sa.Index("ix_seats_owner_user_id", "owner_user_id"),
    sa.Index("ix_seats_status_held_until", "status", "held_until_ms"),
    sa.Index("ix_seats_updated_seq", "updated_seq"),
)

entry_logs = sa.Table(
    "entry_logs",
    metadata,
    sa.Column("log_id", sa.String(36), primary_key=True),
    # No foreign key: scans naming no known seat are logged too.
    sa.Column("seat_id", sa.String(36)),
    sa.Column("event_id", sa.String(36)),
    sa.Column("gate_id", sa.String(36)),
    sa.Column("staff_user_id", sa.String(36)),
    sa.Column("scan_id", sa.String(36)),
    sa.Column("result", sa.String(32), nullable=False),
    sa.Column("hall_presented", sa.String(20)),
    sa.Column("hall_expected", sa.String(20)),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("scanned_at_ms", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False, server_default="0"),
    sa.Column("detail", sa.String(1000), nullable=False, server_default=""),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_entry_logs_event_scanned", "event_id", "scanned_at_ms"),
    sa.Index("ix_entry_logs_scan_id", "scan_id"),
)


async def _create_sequence(conn: AsyncConnection) -> None:
    # SQLite has no sequences; next_seq() falls back to MAX()+1 there.
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {SEQ_NAME}"))


async def _add_refunded_epoch(conn: AsyncConnection) -> None:
    columns = await conn.run_sync(
        lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("seats")]
    )
    if "refunded_epoch" not in columns:
        await conn.execute(
            sa.text("ALTER TABLE seats ADD COLUMN refunded_epoch INTEGER NOT NULL DEFAULT 0")
        )


async def _add_device_serial(conn: AsyncConnection) -> None:
    columns = await conn.run_sync(
        lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("seats")]
    )
    if "device_serial" not in columns:  # databases created before the column existed
        await conn.execute(
            sa.text("ALTER TABLE seats ADD COLUMN device_serial INTEGER NOT NULL DEFAULT 0")
        )


MIGRATIONS: list[Step] = [
    Step(1, "inventory: seats and entry_logs", create_tables(metadata, "seats", "entry_logs")),
    Step(2, "inventory: manifest cursor sequence", _create_sequence),
    Step(3, "inventory: refunded epoch", _add_refunded_epoch),
    Step(4, "inventory: device serial for TR2 codes", _add_device_serial),
]


def next_seq(dialect_name: str) -> sa.ColumnElement[int]:
    """The next manifest cursor value, as an expression to put inside the writing statement.

    PostgreSQL: a real sequence (distinct per row, no table scan). SQLite: MAX()+1 over the table,
    safe because SQLite lets one connection write at a time, and a write statement (or a BEGIN
    IMMEDIATE transaction) takes that lock before it reads; a statement touching
    several rows gives them one shared value, which the manifest reader handles (it never splits a
    value across pages).
    """
    if dialect_name == "postgresql":
        return sa.func.nextval(SEQ_NAME)
    # An alias, so that inside `UPDATE seats` the subquery is not correlated to the updated row.
    src = seats.alias("seq_src")
    return sa.select(sa.func.coalesce(sa.func.max(src.c.updated_seq), 0) + 1).scalar_subquery()
