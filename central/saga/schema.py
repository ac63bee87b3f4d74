"""The orchestrator's own tables: the saga log (one row per saga, one per recorded step) and the
Idempotency-Key answers.

Times are unix seconds (float): simple to compare in one conditional statement on both SQLite and
PostgreSQL, and the lease and deadline logic is all comparisons."""

from __future__ import annotations

import json
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
    # The saga's input, written once when it starts and never again.
    sa.Column("data", sa.Text, nullable=False),
    # The old whole-JSON step log (before migration 105): no longer written; finished sagas of
    # that time keep their log here, running ones had it moved to saga_steps.
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

# One row per recorded step outcome, as DBOS records operation outputs: the step's return value
# is its only output. `step` is the step's name, or `undo:<name>` for its compensation. Each row
# is written by one INSERT … SELECT … WHERE the saga's lease is still ours, so a runner that lost
# its lease records nothing (SagaRunner._record).
saga_steps = sa.Table(
    "saga_steps",
    metadata,
    sa.Column("saga_id", sa.String(36), primary_key=True),
    sa.Column("step", sa.String(80), primary_key=True),
    # DONE (took effect; output is its return value) | REFUSED (definitely took no effect; the
    # saga is rolled back without undoing it) | COMPENSATED (an `undo:` row)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("output", sa.Text),
    sa.Column("recorded_at", sa.Float, nullable=False),
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


# Values the steps before migration 105 stashed in the saga's data instead of returning them,
# and the step each one belongs to now (what a saga in flight during the upgrade still needs).
_OLD_ANSWER_STEP = {
    "transfer": "mark_completed",
    "transfer_reverse": "mark_reversed",
    "cancel_event": "mark_cancelled",
    "order_refund": "refund",
    "dispute_open": "mark_disputed",
    "dispute_close": "release_hold",
}


def _rows_of_old_log(saga: Any) -> list[dict[str, Any]]:
    """The saga_steps rows that say what one saga's old JSON log (and data) said."""
    data = json.loads(saga.data)
    log = json.loads(saga.steps or "{}")
    outputs = {name: entry.get("result") for name, entry in log.items()}
    # The final step used to put the saga's answer in data["result"]; now its output is it.
    answer_step = _OLD_ANSWER_STEP.get(saga.kind)
    if answer_step in log and "result" in data:
        outputs[answer_step] = data["result"]
    if saga.kind == "order_refund" and "check_order" in log and "order" in data:
        outputs["check_order"] = {**(outputs["check_order"] or {}), "order": data["order"]}
    base = {"saga_id": saga.saga_id, "recorded_at": saga.updated_at}
    rows = []
    for name, entry in log.items():
        # A COMPENSATED entry replaced its DONE one: the step had taken effect, then was undone.
        rows.append({**base, "step": name, "status": "DONE", "output": json.dumps(outputs[name])})
        if entry.get("status") == "COMPENSATED":
            rows.append({**base, "step": f"undo:{name}", "status": "COMPENSATED", "output": None})
    if (
        saga.kind == "transfer_reverse"
        and data.get("seat_not_returned")
        and "return_seat" not in log
    ):
        # a definite refusal the old compensation read from data
        rows.append({**base, "step": "return_seat", "status": "REFUSED", "output": None})
    return rows


async def _move_step_logs(conn: Any) -> None:
    """Create saga_steps and move the log of every saga not yet finished into it, in the
    migration's one transaction: a saga in flight at the upgrade resumes (or is recovered) from
    exactly the steps it had recorded. Finished sagas keep their old log where it was."""
    await create_tables(metadata, "saga_steps")(conn)
    running = (
        await conn.execute(
            sa.select(
                sagas.c.saga_id, sagas.c.kind, sagas.c.data, sagas.c.steps, sagas.c.updated_at
            ).where(sagas.c.status.not_in(("COMPLETED", "FAILED")))
        )
    ).all()
    rows = [row for saga in running for row in _rows_of_old_log(saga)]
    if rows:
        await conn.execute(saga_steps.insert(), rows)
    if conn.dialect.name == "postgresql":
        for statement in WAKEUP_TRIGGERS:
            await conn.execute(sa.text(statement))


# PostgreSQL tells every orchestrator process when a saga stops being driven or an
# Idempotency-Key gets its answer (or is let go), so a request waiting for another is woken at
# once (central/orchestrator/wakeups.py). Triggers, not a NOTIFY after each write: no extra round
# trip on the hot path, and every writer (request, recovery, another process) is covered.
WAKEUP_CHANNEL = "tr_wakeup"
WAKEUP_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION tr_saga_wakeup() RETURNS trigger AS $$
    BEGIN
      PERFORM pg_notify('{WAKEUP_CHANNEL}', 'saga:' || NEW.saga_id);
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER sagas_wakeup AFTER UPDATE ON sagas FOR EACH ROW
    WHEN (NEW.status NOT IN ('RUNNING', 'COMPENSATING'))
    EXECUTE FUNCTION tr_saga_wakeup()""",
    f"""CREATE OR REPLACE FUNCTION tr_idempotency_wakeup() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('{WAKEUP_CHANNEL}', 'idem:' || OLD.scope || chr(10) || OLD.key);
      ELSE
        PERFORM pg_notify('{WAKEUP_CHANNEL}', 'idem:' || NEW.scope || chr(10) || NEW.key);
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER idempotency_keys_wakeup AFTER UPDATE OR DELETE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION tr_idempotency_wakeup()""",
]


STEPS = [
    Step(1, "saga log", create_tables(metadata, "sagas")),
    Step(2, "idempotency keys", create_tables(metadata, "idempotency_keys")),
    Step(3, "saga next phase", _add_next_phase),
]

# Appended after the other orchestrator modules' steps (one version sequence per database).
STEP_LOG_STEPS = [Step(105, "saga steps: one row per step outcome", _move_step_logs)]
