"""The admin event dashboard: seats by status, revenue, admissions per gate and per minute,
conflicts and the most recent entries."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from aiohttp import web

from central.orchestrator.answer_models import Dashboard
from central.orchestrator.answers import answers
from central.orchestrator.auth import authenticate, require_role
from central.orchestrator.keys import backends_key
from central.orchestrator.verification import iso_ms
from central.web import parse_uuid

routes = web.RouteTableDef()

RECENT_ENTRIES = 20
RECENT_MINUTES = 30  # the live view's admissions-per-minute window, zero minutes included
LOG_WINDOW = 1000  # the newest entry-log rows the result and conflict figures are drawn from
SEAT_STATUSES = ("AVAILABLE", "HELD", "SOLD", "CHECKED_IN")


def entry_view(entry: Any, gate_names: dict[str, str]) -> dict[str, Any]:
    return {
        "scan_id": entry.scan_id or None,
        "seat_id": entry.seat_id or None,
        "gate_id": entry.gate_id or None,
        "gate_name": gate_names.get(entry.gate_id),
        "staff_user_id": entry.staff_user_id or None,
        "result": entry.result,
        "mode": entry.mode,
        "hall_presented": entry.hall_presented or None,
        "hall_expected": entry.hall_expected or None,
        "scanned_at": iso_ms(entry.scanned_at_ms),
        "latency_ms": round(entry.latency_ms, 2),
        "detail": entry.detail,
    }


@routes.get("/api/admin/events/{event_id}/dashboard")
@answers(Dashboard)
async def dashboard(request: web.Request) -> Dashboard:
    backends = request.app[backends_key]
    me = await authenticate(request, backends)
    require_role(me, "admin")
    event_id = parse_uuid(request.match_info["event_id"], "event_id")
    event = await backends.events.event(event_id)
    counts, checked_in, logs, stats, gates = await asyncio.gather(
        backends.inventory.seat_counts([event_id]),
        backends.inventory.list_seats(event_id=event_id, statuses=["CHECKED_IN"]),
        backends.inventory.list_entry_logs(event_id=event_id, limit=LOG_WINDOW),
        backends.orders.stats(event_id),
        backends.events.gates(event["hall_id"]),
    )
    by_status = {s: 0 for s in SEAT_STATUSES}
    for event_counts in counts.values():
        by_status.update(event_counts)
    gate_names = {g["gate_id"]: g["name"] for g in gates}
    # Admissions come from the seats themselves (exact, however many), not from the log window.
    per_gate = Counter(s.checked_in_gate_id for s in checked_in)
    minute_ms = [s.checked_in_at_ms - s.checked_in_at_ms % 60_000 for s in checked_in]
    per_minute = Counter(iso_ms(m) for m in minute_ms)
    now_ms = int(time.time() * 1000)
    this_minute = now_ms - now_ms % 60_000
    window = Counter(m for m in minute_ms if this_minute - m < RECENT_MINUTES * 60_000)
    recent_minutes = [
        {"minute": iso_ms(m), "count": window.get(m, 0)}
        for m in range(this_minute - (RECENT_MINUTES - 1) * 60_000, this_minute + 1, 60_000)
    ]
    # every gate of the hall, silent ones too: a gate with no admissions is news at the doors
    by_gate = [
        {
            "gate_id": gate or None,
            "name": gate_names.get(gate) or ("staff (no gate)" if not gate else None),
            "count": n,
        }
        for gate, n in per_gate.most_common()
    ] + [
        {"gate_id": g["gate_id"], "name": g["name"], "count": 0}
        for g in gates
        if g["gate_id"] not in per_gate
    ]
    entries = logs
    conflicts = [e for e in entries if e.result == "CONFLICT"]
    return Dashboard.model_validate(
        {
            "event": {
                "event_id": event["event_id"],
                "name": event["name"],
                "hall_id": event["hall_id"],
                "event_date": event["event_date"],
                "doors_open": event.get("doors_open"),
                "doors_close": event.get("doors_close"),
            },
            "seats": {"total": sum(by_status.values()), "by_status": by_status},
            "checked_in": by_status["CHECKED_IN"],
            "revenue": stats.get("revenue", 0),
            "sales": {
                # a checked-in ticket was sold too
                "sold": by_status["SOLD"] + by_status["CHECKED_IN"],
                "held": by_status["HELD"],
                "available": by_status["AVAILABLE"],
                "orders_confirmed": stats.get("orders_by_status", {}).get("CONFIRMED", 0),
            },
            "orders_by_status": stats.get("orders_by_status", {}),
            "admissions": {
                "total": by_status["CHECKED_IN"],
                "by_gate": by_gate,
                "per_minute": [{"minute": m, "count": n} for m, n in sorted(per_minute.items())],
                "recent_minutes": recent_minutes,
                "window_minutes": RECENT_MINUTES,
            },
            "scans": {
                "window": len(entries),
                "by_result": dict(Counter(e.result for e in entries)),
                "by_mode": dict(Counter(e.mode for e in entries)),
            },
            "conflicts": {
                "count": len(conflicts),
                "items": [entry_view(e, gate_names) for e in conflicts[:RECENT_ENTRIES]],
            },
            "recent_entries": [entry_view(e, gate_names) for e in entries[:RECENT_ENTRIES]],
            "server_time": iso_ms(now_ms),
        }
    )
