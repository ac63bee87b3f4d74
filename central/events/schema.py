"""The events service's tables and their versioned migrations.

Ids are UUID text; halls are short operator codes; times are timezone-aware UTC. A gate's device
token is never stored, only its SHA-256, so a copy of this database cannot impersonate a gate.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from central.db import Step, create_tables

metadata = sa.MetaData()

Id = sa.String(36)
Stamp = sa.DateTime(timezone=True)
Hall = sa.String(20)

venues = sa.Table(
    "venues",
    metadata,
    sa.Column("venue_id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("address", sa.String(500), nullable=True),
    sa.Column("created_at", Stamp, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("venue_id", Id, sa.ForeignKey("venues.venue_id"), nullable=False, index=True),
    sa.Column("hall_id", Hall, nullable=False, index=True),
    sa.Column("event_date", Stamp, nullable=False, index=True),
    sa.Column("doors_open", Stamp, nullable=False),
    sa.Column("doors_close", Stamp, nullable=False),
    sa.Column("pricing", sa.JSON, nullable=False),
    sa.Column("category_rows", sa.JSON, nullable=False),
    sa.Column("total_seats", sa.Integer, nullable=False),
    sa.Column("created_at", Stamp, nullable=False),
    # SCHEDULED | CANCELLING (the cancellation saga runs) | CANCELLED (migration step 2)
    sa.Column("status", sa.String(16), nullable=False, server_default="SCHEDULED"),
    sa.Column("cancel_reason", sa.String(500), nullable=True),
    sa.CheckConstraint("doors_open < doors_close", name="ck_events_doors"),
    sa.CheckConstraint("total_seats BETWEEN 1 AND 100000", name="ck_events_seats"),
)

gates = sa.Table(
    "gates",
    metadata,
    sa.Column("gate_id", Id, primary_key=True),
    sa.Column("hall_id", Hall, nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
    # When the gate last authenticated (at most every GATE_SEEN_EVERY apart: a scan must not
    # write a row each time); the console shows it to tell a live gate from a silent one.
    sa.Column("last_seen_at", Stamp, nullable=True),
)


async def _add_gate_last_seen(conn: Any) -> None:
    columns = await conn.run_sync(
        lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("gates")]
    )
    if "last_seen_at" not in columns:  # databases created before the column existed
        kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
        await conn.execute(sa.text(f"ALTER TABLE gates ADD COLUMN last_seen_at {kind}"))


async def _add_event_status(conn: Any) -> None:
    columns = await conn.run_sync(
        lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("events")]
    )
    if "status" not in columns:
        await conn.execute(
            sa.text("ALTER TABLE events ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'SCHEDULED'")
        )
    if "cancel_reason" not in columns:
        await conn.execute(sa.text("ALTER TABLE events ADD COLUMN cancel_reason VARCHAR(500)"))


STEPS: list[Step] = [
    Step(1, "venues, events and gates", create_tables(metadata, "venues", "events", "gates")),
    Step(2, "gate last seen", _add_gate_last_seen),
    Step(3, "events: status and cancel reason", _add_event_status),
]
