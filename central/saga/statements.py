"""The saga log's statements, built once (central/direct_sql.py): a purchase runs about a dozen of
them, and on PostgreSQL each one built and executed through SQLAlchemy's async engine cost ~0.5 ms of
the orchestrator's CPU against ~0.15 ms on the driver. Parameter names start with `p_`; the
shapes that vary (which states free a lease, which columns a finish sets, whether a held-back step
rides along) are built once per shape."""

from __future__ import annotations

import functools

import sqlalchemy as sa

from central.direct_sql import HotStatement
from central.saga.schema import saga_steps, sagas

# Only these are active: a lease on them can lapse and be taken over.
ACTIVE = ("RUNNING", "COMPENSATING")

GET = HotStatement(sa.select(sagas).where(sagas.c.saga_id == sa.bindparam("p_saga_id")))
BY_REFERENCE = HotStatement(
    sa.select(sagas)
    .where(sagas.c.reference_id == sa.bindparam("p_reference_id"))
    .order_by(sagas.c.created_at.desc())
    .limit(1)
)
STEPS_OF = HotStatement(
    sa.select(saga_steps)
    .where(saga_steps.c.saga_id == sa.bindparam("p_saga_id"))
    .order_by(saga_steps.c.recorded_at)
)
START = HotStatement(
    sagas.insert().values(
        **{
            name: sa.bindparam(f"p_{name}", type_=sagas.c[name].type)
            for name in (
                "saga_id",
                "kind",
                "status",
                "phase",
                "data",
                "lease_owner",
                "lease_until",
                "deadline",
                "reference_id",
                "created_at",
                "updated_at",
            )
        }
    )
)
EXTEND = HotStatement(
    sagas.update()
    .where(
        sagas.c.saga_id == sa.bindparam("p_saga_id"),
        sagas.c.lease_owner == sa.bindparam("p_lease"),
        sagas.c.lease_until > sa.bindparam("p_now", type_=sa.Float),
    )
    .values(
        lease_until=sa.bindparam("p_lease_until", type_=sa.Float),
        updated_at=sa.bindparam("p_now_set", type_=sa.Float),
    )
)


@functools.cache
def take_lease(
    allowed: tuple[str, ...], with_phase: bool, with_steps: bool = False
) -> HotStatement:
    """Take the saga when it is WAITING in an allowed state, or active in one and its holder's
    lease ran out (p_now). Sets p_lease_owner, p_lease_until, p_status, p_updated_at and, with
    a phase, p_phase; answers the row. with_steps (PostgreSQL, WAITING states only: see
    `with_recorded_steps`): the recorded steps in the same statement."""
    now = sa.bindparam("p_now", type_=sa.Float)
    # OR of equalities, not IN: a prepared statement has one text (direct_sql.py)
    waiting = [sagas.c.status == s for s in allowed if s not in ACTIVE]
    active = [sagas.c.status == s for s in allowed if s in ACTIVE]
    free = sa.or_(
        sa.or_(sa.false(), *waiting),
        sa.and_(sa.or_(sa.false(), *active), sagas.c.lease_until < now),
    )
    values = {
        "lease_owner": sa.bindparam("p_lease_owner", type_=sa.String),
        "lease_until": sa.bindparam("p_lease_until", type_=sa.Float),
        "status": sa.bindparam("p_status", type_=sa.String),
        "updated_at": sa.bindparam("p_updated_at", type_=sa.Float),
    }
    if with_phase:
        values["phase"] = sa.bindparam("p_phase", type_=sa.String)
    update = (
        sagas.update()
        .where(sagas.c.saga_id == sa.bindparam("p_saga_id"), free)
        .values(**values)
        .returning(*sagas.c)
    )
    if with_steps:
        if active:
            raise ValueError("a lapsed lease's steps need their own read (with_recorded_steps)")
        return with_recorded_steps(update)
    return HotStatement(update)


def with_recorded_steps(take: sa.Update) -> HotStatement:
    """PostgreSQL: `take` (an UPDATE that leases a WAITING saga, RETURNING its row) and the saga's
    recorded steps in one statement, one row per step (step_name, step_status, step_output;
    NULLs when there are none).

    Reading the steps in the statement's own snapshot is sound only because the saga must be
    WAITING: a WAITING saga has no lease (lease_until 0), so no step can be recorded for it, and a
    finish that made it WAITING, with the step it records, either committed before this snapshot
    (seen) or is still in flight (then this snapshot's row is not WAITING and nothing is taken).
    A takeover of a lapsed active lease gets no such promise: under READ COMMITTED a step its old
    holder commits while this statement waits on the row would not be seen, so it reads apart."""
    taken = take.cte("taken")
    steps = saga_steps.alias("steps")
    return HotStatement(
        sa.select(
            taken,
            steps.c.step.label("step_name"),
            steps.c.status.label("step_status"),
            steps.c.output.label("step_output"),
        )
        .select_from(taken.outerjoin(steps, steps.c.saga_id == taken.c.saga_id))
        .order_by(steps.c.recorded_at)
    )


def _step_insert() -> sa.Insert:
    """One step outcome that lands only while the lease (p_lease, valid after p_now) holds. On
    PostgreSQL the lease row is share-locked by the same statement, so a takeover cannot slip in
    between the check and the insert (SQLite serialises writers anyway)."""
    saga_id = sa.bindparam("p_saga_id", type_=sa.String)
    now = sa.bindparam("p_now", type_=sa.Float)
    lease_held = (
        sa.select(sagas.c.saga_id)
        .where(
            sagas.c.saga_id == saga_id,
            sagas.c.lease_owner == sa.bindparam("p_lease", type_=sa.String),
            sagas.c.lease_until > now,
        )
        .with_for_update(read=True)
    )
    row = sa.select(
        saga_id,
        sa.bindparam("p_step", type_=sa.String),
        sa.bindparam("p_step_status", type_=sa.String),
        sa.bindparam("p_output", type_=sa.Text),
        now,
    ).where(lease_held.exists())
    return saga_steps.insert().from_select(
        ["saga_id", "step", "status", "output", "recorded_at"], row
    )


RECORD = HotStatement(_step_insert())


@functools.cache
def finish(columns: tuple[str, ...], with_step: bool) -> HotStatement:
    """Set the saga's status (p_status), `columns` (p_<name>) and let go of the lease, only while
    it is still ours (p_lease); with_step: the held-back step (RECORD's parameters) recorded by
    the same statement, and the saga changed only if it lands."""
    update = (
        sagas.update()
        .where(
            sagas.c.saga_id == sa.bindparam("p_saga_id", type_=sa.String),
            sagas.c.lease_owner == sa.bindparam("p_lease", type_=sa.String),
        )
        .values(
            status=sa.bindparam("p_status", type_=sa.String),
            lease_until=0,
            updated_at=sa.bindparam("p_updated_at", type_=sa.Float),
            **{c: sa.bindparam(f"p_{c}", type_=sagas.c[c].type) for c in columns},
        )
    )
    if with_step:
        recorded = _step_insert().returning(saga_steps.c.saga_id).cte("recorded")
        update = update.where(sa.exists(sa.select(recorded.c.saga_id))).add_cte(recorded)
    return HotStatement(update)


@functools.cache
def lease_own_waiting(dialect: str, owner_key: str) -> HotStatement:
    """Take the latest saga of a reference (p_reference_id) when it is of kind p_kind, WAITING,
    its input's `owner_key` is p_owner and its deadline, if any, is not before p_not_after:
    take_lease's values (p_lease_owner, p_lease_until, p_status, p_phase, p_updated_at), the row
    answered; on PostgreSQL with its recorded steps (`with_recorded_steps`)."""
    if dialect == "postgresql":
        owner = sa.cast(sagas.c.data, sa.JSON)[owner_key].as_string()
    else:  # SQLite keeps JSON as text; a CAST to JSON would turn it into a number
        owner = sa.func.json_extract(sagas.c.data, f"$.{owner_key}")
    latest = (
        sa.select(sagas.c.saga_id)
        .where(sagas.c.reference_id == sa.bindparam("p_reference_id", type_=sa.String))
        .order_by(sagas.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    not_after = sa.bindparam("p_not_after", type_=sa.Float)
    update = (
        sagas.update()
        .where(
            sagas.c.saga_id == latest,
            sagas.c.kind == sa.bindparam("p_kind", type_=sa.String),
            sagas.c.status == "WAITING",
            owner == sa.bindparam("p_owner", type_=sa.String),
            sa.or_(sagas.c.deadline.is_(None), sagas.c.deadline >= not_after),
        )
        .values(
            lease_owner=sa.bindparam("p_lease_owner", type_=sa.String),
            lease_until=sa.bindparam("p_lease_until", type_=sa.Float),
            status=sa.bindparam("p_status", type_=sa.String),
            phase=sa.bindparam("p_phase", type_=sa.String),
            updated_at=sa.bindparam("p_updated_at", type_=sa.Float),
        )
        .returning(*sagas.c)
    )
    return with_recorded_steps(update) if dialect == "postgresql" else HotStatement(update)
