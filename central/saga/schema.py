"""The orchestrator's own tables: the saga log and the Idempotency-Key answers.

Times are unix seconds (float): simple to compare in one conditional statement on both SQLite and
PostgreSQL, and the lease and deadline logic is all comparisons."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from central.db import Step, create_tables

metadata = sa.MetaData()

sagas = sa.Table(
    "sagas",
    metadata,
    sa.Column("saga_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    # RUNNING | WAITING | COMPENSATING | COMPLETED | FAILED
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    # {step: {"status": "DONE" | "COMPENSATED", "result": …}} — kept in the saga's own row, so
    # recording a step is one conditional UPDATE (that also proves we still hold the lease).
    sa.Column("steps", sa.Text, nullable=False, server_default="{}"),
    sa.Column("result", sa.Text),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
    # A WAITING saga past its deadline is compensated (for a purchase: the hold expired).
    sa.Column("deadline", sa.Float),
    sa.Column("reference_id", sa.String(64)),
    # A phase a request asked to run next: if that request dies before running it, recovery
    # does (see SagaRunner.request_phase).
    sa.Column("next_phase", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_sagas_status_deadline", "status", "deadline"),
    sa.Index("ix_sagas_status_lease", "status", "lease_until"),
    sa.Index("ix_sagas_reference", "reference_id"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer),  # NULL while the first request is still running
    sa.Column("body", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
)


async def _add_next_phase(conn: Any) -> None:
    columns = await conn.run_sync(
        lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("sagas")]
    )
    if "next_phase" not in columns:  # databases created before the column existed
        await conn.execute(sa.text("ALTER TABLE sagas ADD COLUMN next_phase VARCHAR(32)"))


STEPS = [
    Step(1, "saga log", create_tables(metadata, "sagas")),
    Step(2, "idempotency keys", create_tables(metadata, "idempotency_keys")),
    Step(3, "saga next phase", _add_next_phase),
]
