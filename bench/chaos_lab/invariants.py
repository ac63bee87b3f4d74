"""What must hold after every fault, read straight from the databases (each service's own, on the
private PostgreSQL) and from the gates' own SQLite outboxes: each check answers its number of
violations and a few examples to start debugging from."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench.chaos_lab.system import Gate, System
from central.orchestrator.routes.gate import scan_uuid

# A HELD seat may outlive its TTL by the sweep interval and a broker round trip; anything longer
# is a hold nothing released.
HOLD_GRACE_S = 15.0
SAGA_GRACE_S = 15.0


@dataclass
class Check:
    name: str
    violations: int
    examples: list[Any] = field(default_factory=list)


async def _rows(system: System, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=system.pg.port, user="postgres", database=f"chaos_{service}"
    )
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def gate_scans(gate: Gate) -> list[dict[str, Any]]:
    """Every scan a gate decided, from its own outbox (read-only: the gate keeps writing)."""
    conn = sqlite3.connect(f"file:{gate.db_path}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM scans")]
    finally:
        conn.close()


async def check_all(system: System, *, include_pending: bool) -> list[Check]:
    """Every invariant once. Scans a gate has not uploaded yet (an offline gate) are judged only
    when include_pending (at the end, after the gate is back)."""
    now_ms = time.time() * 1000
    # The gates' outboxes first: a code shown just before the load paused may still be judged
    # while the checks read. A scan a gate has recorded is already known to central (online: the
    # entry-log row is kept before the gate hears the verdict; offline: it is no longer pending
    # only once central took it), so reading central afterwards never misses it.
    scans_by_gate = {gate.name: gate_scans(gate) for gate in system.gates}
    confirmed = await _rows(
        system,
        "orders",
        "SELECT seat_id, user_id, credits_charged FROM orders WHERE status = 'CONFIRMED'",
    )
    seats = await _rows(
        system,
        "inventory",
        "SELECT seat_id, status, held_until_ms, checked_in_scan_id FROM seats",
    )
    logs = await _rows(system, "inventory", "SELECT scan_id, seat_id, result FROM entry_logs")
    checks: list[Check] = []

    per_seat: dict[str, int] = {}
    for row in confirmed:
        per_seat[row["seat_id"]] = per_seat.get(row["seat_id"], 0) + 1
    twice = [s for s, n in per_seat.items() if n > 1]
    checks.append(Check("no seat sold twice", len(twice), twice[:3]))

    sold = {s["seat_id"] for s in seats if s["status"] in ("SOLD", "CHECKED_IN")}
    disagree = sorted(sold ^ set(per_seat))
    checks.append(
        Check("every sold seat has one paid order, and back", len(disagree), disagree[:3])
    )

    late = [
        s["seat_id"]
        for s in seats
        if s["status"] == "HELD" and (s["held_until_ms"] or 0) < now_ms - HOLD_GRACE_S * 1000
    ]
    checks.append(Check("no seat HELD past its TTL", len(late), late[:3]))

    checks.append(await _credits(system, confirmed))
    checks.append(await _sagas(system))

    successes: dict[str, int] = {}
    for row in logs:
        if row["result"] == "SUCCESS" and row["seat_id"]:
            successes[row["seat_id"]] = successes.get(row["seat_id"], 0) + 1
    doubled = [s for s, n in successes.items() if n > 1]
    checked_in = {s["seat_id"] for s in seats if s["status"] == "CHECKED_IN"}
    unlogged = sorted(checked_in - set(successes))
    checks.append(Check("no ticket checked in twice", len(doubled), doubled[:3]))

    by_scan: dict[str, int] = {}
    for row in logs:
        if row["scan_id"]:
            by_scan[row["scan_id"]] = by_scan.get(row["scan_id"], 0) + 1
    admissions_off: list[str] = []
    scans_lost: list[str] = []
    for gate in system.gates:
        for scan in scans_by_gate[gate.name]:
            if scan["pending"] and not include_pending:
                continue
            if scan["pending"]:
                scans_lost.append(f"{gate.name}:{scan['scan_id']} never uploaded")
                continue
            rows = by_scan.get(scan_uuid(gate.gate_id, scan["scan_id"]), 0)
            if rows == 0:
                scans_lost.append(f"{gate.name}:{scan['scan_id']} {scan['result']}")
            if scan["result"] == "SUCCESS" and rows != 1:
                admissions_off.append(f"{gate.name}:{scan['scan_id']} x{rows}")
    checks.append(
        Check(
            "every gate admission at central exactly once",
            len(admissions_off),
            admissions_off[:3],
        )
    )
    checks.append(door_disagreements(system, scans_by_gate, seats, include_pending=include_pending))
    outbox = await _rows(system, "orchestrator", "SELECT count(*) AS n FROM entry_log_outbox")
    waiting = int(outbox[0]["n"])
    checks.append(
        Check(
            "no entry-log row lost",
            len(scans_lost) + len(unlogged) + waiting,
            [*scans_lost[:2], *(f"checked in, no log: {s}" for s in unlogged[:2])]
            + ([f"{waiting} rows still in the outbox"] if waiting else []),
        )
    )
    return checks


async def _credits(system: System, confirmed: list[asyncpg.Record]) -> Check:
    """Every balance is the sum of its ledger; all balances together are what the operator granted
    plus the PAID card top-ups less what was paid for tickets (transfers only move credits); and
    each top-up was credited exactly once: one TOPUP ledger entry of its amount when PAID, none
    while PENDING or after FAILED."""
    users = await _rows(
        system,
        "users",
        "SELECT u.user_id, u.credit_balance, coalesce(sum(l.amount), 0) AS ledger"
        " FROM users u LEFT JOIN credit_ledger l ON l.user_id = u.user_id GROUP BY u.user_id",
    )
    topups = await _rows(system, "users", "SELECT topup_id, amount, status FROM topups")
    entries = await _rows(
        system,
        "users",
        "SELECT reference_id, amount FROM credit_ledger WHERE kind = 'TOPUP'",
    )
    off = [u["user_id"] for u in users if u["credit_balance"] != u["ledger"]]
    examples: list[Any] = off[:3]
    violations = len(off)

    credited: dict[str, list[int]] = {}
    for entry in entries:
        credited.setdefault(entry["reference_id"], []).append(int(entry["amount"]))
    status = {t["topup_id"]: t["status"] for t in topups}
    miscredited = [
        f"top-up {t['topup_id']} {t['status']} credited {credited.get(t['topup_id'], [])}"
        for t in topups
        if credited.get(t["topup_id"], []) != ([int(t["amount"])] if t["status"] == "PAID" else [])
    ]
    miscredited += [
        f"TOPUP entry for unknown top-up {ref}" for ref in credited if ref not in status
    ]
    violations += len(miscredited)
    examples += miscredited[:3]

    total = sum(int(u["credit_balance"]) for u in users)
    paid_in = sum(int(t["amount"]) for t in topups if t["status"] == "PAID")
    expected = system.granted + paid_in - sum(int(r["credits_charged"]) for r in confirmed)
    if total != expected:
        violations += 1
        examples.append(f"balances {total} != granted + paid top-ups - sales {expected}")
    return Check("credits conserved", violations, examples)


async def _sagas(system: System) -> Check:
    now = time.time()
    rows = await _rows(
        system, "orchestrator", "SELECT saga_id, kind, status, lease_until, deadline FROM sagas"
    )
    stuck = [
        f"{r['kind']} {r['saga_id']} {r['status']}"
        for r in rows
        if (r["status"] in ("RUNNING", "COMPENSATING") and r["lease_until"] < now - SAGA_GRACE_S)
        or (r["status"] == "WAITING" and (r["deadline"] or now) < now - SAGA_GRACE_S)
    ]
    return Check("every saga finished or compensated", len(stuck), stuck[:3])


async def settle(system: System, timeout: float = 60) -> None:
    """Wait (bounded) until nothing is in motion: no saga running or compensating, the entry-log
    outbox empty, every connected gate's backlog uploaded, and no gate still judging a code shown
    just before the load paused (its scan count unchanged since the last look)."""
    deadline = time.monotonic() + timeout
    last_counts: list[int] | None = None
    while time.monotonic() < deadline:
        try:
            active = await _rows(
                system,
                "orchestrator",
                "SELECT count(*) AS n FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')",
            )
            outbox = await _rows(
                system, "orchestrator", "SELECT count(*) AS n FROM entry_log_outbox"
            )
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.5)
            continue
        backlog = sum(
            1
            for gate in system.gates
            if not (gate.proxy is not None and gate.proxy.cut_now)
            for scan in gate_scans(gate)
            if scan["pending"]
        )
        counts = [len(gate_scans(gate)) for gate in system.gates]
        quiet = counts == last_counts
        last_counts = counts
        if active[0]["n"] == 0 and outbox[0]["n"] == 0 and backlog == 0 and quiet:
            return
        await asyncio.sleep(0.5)


def door_disagreements(
    system: System,
    scans_by_gate: dict[str, list[dict[str, Any]]],
    seats: list[asyncpg.Record],
    *,
    include_pending: bool,
) -> Check:
    """Seats central holds CHECKED_IN by a scan the gate itself turned away: the gate's online
    call timed out, it decided offline (e.g. from a manifest older than the sale) and kept the
    door shut, while central's late verdict admitted the ticket. Its upload of that scan makes
    central undo the check-in, so once uploaded none may be left (a scan still waiting for upload
    is judged only when include_pending)."""
    by_scan = {s["checked_in_scan_id"]: s["seat_id"] for s in seats if s["status"] == "CHECKED_IN"}
    found = []
    for gate in system.gates:
        for scan in scans_by_gate[gate.name]:
            if scan["pending"] and not include_pending:
                continue
            seat = by_scan.get(scan_uuid(gate.gate_id, scan["scan_id"]))
            if seat is not None and scan["result"] != "SUCCESS":
                found.append(f"{gate.name}:{scan['scan_id']} {scan['result']} seat {seat}")
    return Check("the door and central agree on every scan", len(found), found[:3])
