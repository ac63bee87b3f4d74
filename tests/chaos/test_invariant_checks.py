"""The chaos run's invariant checks can fail: on a private PostgreSQL cluster with every service's
schema, a healthy state has zero violations, and each kind of damage a fault could leave behind
(a seat sold twice, a hold nobody released, credits out of thin air, a top-up credited twice or
not at all, a stuck saga, a ticket admitted twice, an entry-log row still waiting, a gate admission central never heard of, a
seat checked in by a scan its gate turned away) is
counted by the check that names it."""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.chaos_lab.faults import Process, missing_binaries
from bench.chaos_lab.invariants import check_all
from bench.chaos_lab.system import Gate, System
from central.db import make_engine, migrate
from central.events.schema import STEPS as EVENTS
from central.inventory.schema import MIGRATIONS as INVENTORY
from central.orchestrator.entry_log import STEPS as ENTRY_LOG
from central.orchestrator.gate_scans import STEPS as GATE_SCANS
from central.orchestrator.routes.gate import scan_uuid
from central.orders.schema import STEPS as ORDERS
from central.saga.schema import STEPS as SAGAS
from central.users.schema import STEPS as USERS
from gate_agent.outbox import SCHEMA as GATE_SCHEMA

SCHEMAS = {
    "inventory": INVENTORY,
    "users": USERS,
    "orders": ORDERS,
    "events": EVENTS,
    "orchestrator": [*SAGAS, *GATE_SCANS, *ENTRY_LOG],
}


async def sql(system: System, service: str, statement: str, **params: Any) -> None:
    engine = await make_engine(f"{system.pg.url}_{service}")
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement), params)
    finally:
        await engine.dispose()


async def migrate_all(system: System) -> None:
    for service, steps in SCHEMAS.items():
        engine = await make_engine(f"{system.pg.url}_{service}")
        await migrate(engine, steps)
        await engine.dispose()


def by_name(checks: list[Any]) -> dict[str, int]:
    return {c.name: c.violations for c in checks}


needs_binaries = pytest.mark.skipif(
    bool(missing_binaries()), reason=f"a private PostgreSQL needs {missing_binaries()}"
)


@pytest.fixture
def system(tmp_path: Path) -> Any:
    s = System(tmp_path / "sys")
    s.pg.init().start()
    yield s
    s.pg.remove()
    s.leftovers.done()


@needs_binaries
async def test_each_kind_of_damage_is_counted(system: System, tmp_path: Path) -> None:
    await migrate_all(system)
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    gate = Gate(
        "north",
        str(uuid.uuid4()),
        "t",
        Process("g", [], tmp_path / "g.log", None),
        gate_dir,
        gate_dir,
        0,
    )
    with sqlite3.connect(gate.db_path) as conn:
        conn.executescript(GATE_SCHEMA)
    system.gates.append(gate)
    now = datetime.now(UTC)
    now_ms = int(time.time() * 1000)
    user, seat = str(uuid.uuid4()), str(uuid.uuid4())

    # a healthy state: one user granted 100 who bought one seat for 10, admitted once, logged
    system.granted = 100
    await sql(
        system,
        "users",
        "INSERT INTO users (user_id, email, password_hash, role, is_flagged, is_verified,"
        " credit_balance, created_at) VALUES (:u, 'a@example.com', 'x', 'customer', false, true,"
        " 90, :now)",
        u=user,
        now=now,
    )
    for amount, key in ((100, "grant"), (-10, "buy")):
        await sql(
            system,
            "users",
            "INSERT INTO credit_ledger (entry_id, user_id, amount, kind, idempotency_key,"
            " balance_after, created_at) VALUES (:e, :u, :a, 'X', :k, 0, :now)",
            e=str(uuid.uuid4()),
            u=user,
            a=amount,
            k=key,
            now=now,
        )
    order = (
        "INSERT INTO orders (order_id, user_id, seat_id, event_id, status, credits_charged,"
        " created_at, updated_at) VALUES (:o, :u, :s, :e, 'CONFIRMED', 10, :now, :now)"
    )
    await sql(system, "orders", order, o=str(uuid.uuid4()), u=user, s=seat, e=seat, now=now)
    seat_row = (
        "INSERT INTO seats (seat_id, event_id, row, number, category, status, owner_epoch,"
        " held_until_ms, updated_seq, created_at_ms, updated_at_ms)"
        " VALUES (:s, :s, 'A', 1, 'STD', :status, 1, :held, 1, 0, 0)"
    )
    await sql(system, "inventory", seat_row, s=seat, status="CHECKED_IN", held=None)
    log_row = (
        "INSERT INTO entry_logs (log_id, seat_id, scan_id, result, mode, scanned_at_ms,"
        " created_at_ms) VALUES (:l, :s, :scan, 'SUCCESS', 'online', 0, 0)"
    )
    await sql(
        system,
        "inventory",
        log_row,
        l=str(uuid.uuid4()),
        s=seat,
        scan=scan_uuid(gate.gate_id, "g-1"),
    )
    with sqlite3.connect(gate.db_path) as conn:
        conn.execute(
            "INSERT INTO scans (scan_id, at, qr_payload, result, mode, pending)"
            " VALUES ('g-1', 0, 'x', 'SUCCESS', 'online', 0)"
        )
    assert all(v == 0 for v in by_name(await check_all(system, include_pending=True)).values())

    # now the damage, one kind each
    await sql(system, "orders", order, o=str(uuid.uuid4()), u=user, s=seat, e=seat, now=now)
    held = str(uuid.uuid4())
    await sql(system, "inventory", seat_row, s=held, status="HELD", held=now_ms - 60_000)
    await sql(system, "users", "UPDATE users SET credit_balance = 1000")
    await sql(
        system,
        "orchestrator",
        "INSERT INTO sagas (saga_id, kind, status, phase, data, steps, lease_until, created_at,"
        " updated_at) VALUES (:s, 'purchase', 'RUNNING', 'reserve', '{}', '{}', 0, 0, 0)",
        s=str(uuid.uuid4()),
    )
    await sql(system, "inventory", log_row, l=str(uuid.uuid4()), s=seat, scan=str(uuid.uuid4()))
    await sql(
        system,
        "orchestrator",
        "INSERT INTO entry_log_outbox (log_id, entry, created_at) VALUES (:l, :e, 0)",
        l=str(uuid.uuid4()),
        e=b"",
    )
    with sqlite3.connect(gate.db_path) as conn:
        conn.execute(
            "INSERT INTO scans (scan_id, at, qr_payload, result, mode, pending)"
            " VALUES ('g-2', 0, 'x', 'SUCCESS', 'offline', 0)"
        )
    # the seat checked in at central by a scan the gate turned away (the late-verdict disagreement)
    await sql(
        system,
        "inventory",
        "UPDATE seats SET checked_in_scan_id = :scan WHERE seat_id = :s",
        s=seat,
        scan=scan_uuid(gate.gate_id, "g-3"),
    )
    await sql(
        system,
        "inventory",
        "INSERT INTO entry_logs (log_id, seat_id, scan_id, result, mode, scanned_at_ms,"
        " created_at_ms) VALUES (:l, :s, :scan, 'UNPAID', 'offline', 0, 0)",
        l=str(uuid.uuid4()),
        s=seat,
        scan=scan_uuid(gate.gate_id, "g-3"),
    )
    with sqlite3.connect(gate.db_path) as conn:
        conn.execute(
            "INSERT INTO scans (scan_id, at, qr_payload, result, mode, pending)"
            " VALUES ('g-3', 0, 'x', 'UNPAID', 'offline', 0)"
        )
    found = by_name(await check_all(system, include_pending=True))
    assert found["the door and central agree on every scan"] == 1
    assert found["no seat sold twice"] == 1
    assert found["no seat HELD past its TTL"] == 1
    assert found["credits conserved"] >= 1
    assert found["every saga finished or compensated"] == 1
    assert found["no ticket checked in twice"] == 1
    assert found["every gate admission at central exactly once"] == 1  # g-2 never arrived
    assert found["no entry-log row lost"] == 2  # g-2's row, and the one still in the outbox


def credits(checks: list[Any]) -> Any:
    return next(c for c in checks if c.name == "credits conserved")


@needs_binaries
async def test_a_topup_credited_twice_or_never_is_counted(system: System) -> None:
    await migrate_all(system)
    now = datetime.now(UTC)
    user = str(uuid.uuid4())
    paid, pending, failed = (str(uuid.uuid4()) for _ in range(3))

    async def entry(amount: int, kind: str, key: str, ref: str | None) -> None:
        await sql(
            system,
            "users",
            "INSERT INTO credit_ledger (entry_id, user_id, amount, kind, idempotency_key,"
            " reference_id, balance_after, created_at) VALUES (:e, :u, :a, :k, :key, :r, 0, :now)",
            e=str(uuid.uuid4()),
            u=user,
            a=amount,
            k=kind,
            key=key,
            r=ref,
            now=now,
        )

    async def balance(amount: int) -> None:
        await sql(system, "users", "UPDATE users SET credit_balance = :b", b=amount)

    # healthy: granted 100, a PAID top-up of 20 credited once, a PENDING and a FAILED one not
    system.granted = 100
    await sql(
        system,
        "users",
        "INSERT INTO users (user_id, email, password_hash, role, is_flagged, is_verified,"
        " credit_balance, created_at) VALUES (:u, 'a@example.com', 'x', 'customer', false, true,"
        " 120, :now)",
        u=user,
        now=now,
    )
    for topup_id, amount, status in (
        (paid, 20, "PAID"),
        (pending, 5, "PENDING"),
        (failed, 7, "FAILED"),
    ):
        await sql(
            system,
            "users",
            "INSERT INTO topups (topup_id, user_id, amount, provider, status, created_at)"
            " VALUES (:t, :u, :a, 'demo', :s, :now)",
            t=topup_id,
            u=user,
            a=amount,
            s=status,
            now=now,
        )
    await entry(100, "GRANT", "grant", None)
    await entry(20, "TOPUP", f"topup:{paid}", paid)
    assert credits(await check_all(system, include_pending=True)).violations == 0

    # the PAID top-up credited a second time (the balance follows its ledger: only the top-up
    # accounting can see it)
    await entry(20, "TOPUP", "topup-again", paid)
    await balance(140)
    check = credits(await check_all(system, include_pending=True))
    assert check.violations == 2, check  # the top-up, and the total it inflated
    assert paid in str(check.examples[0])

    await sql(system, "users", "DELETE FROM credit_ledger WHERE idempotency_key = 'topup-again'")
    await balance(120)
    assert credits(await check_all(system, include_pending=True)).violations == 0

    # a top-up marked PAID that no ledger entry ever credited
    await sql(system, "users", "UPDATE topups SET status = 'PAID' WHERE topup_id = :t", t=pending)
    check = credits(await check_all(system, include_pending=True))
    assert check.violations == 2, check  # the top-up, and the total short of its 5 credits
    assert pending in str(check.examples[0])

    # a FAILED top-up that was credited anyway
    await sql(
        system, "users", "UPDATE topups SET status = 'PENDING' WHERE topup_id = :t", t=pending
    )
    await entry(7, "TOPUP", f"topup:{failed}", failed)
    await balance(127)
    check = credits(await check_all(system, include_pending=True))
    assert check.violations == 2, check
    assert failed in str(check.examples[0])
