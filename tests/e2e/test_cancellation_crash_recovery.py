"""Crash recovery of the event cancellation saga with real processes on PostgreSQL (issue 14, must
show 2): for every step boundary of the saga, and inside the refund of one order (after its seat is freed,
after its credit), central is SIGKILLed exactly there (a compiled-in fault point) and
restarted. Recovery finishes the cancellation: every confirmed order refunded exactly once, credits
conserved across all users, no seat of a cancelled event left SOLD or HELD, and gates refuse its
tickets with CANCELLED — online, and offline from a freshly synced manifest."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from central_process import CentralProcess, api, query, run_admin
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres

from central.signing import KeyRing
from gate_agent.verifier import Manifest, decide_offline, local_check

POINTS = [
    "cancel_event.after_mark_cancelling",
    "cancel_event.after_end_transfers",
    "cancel_event.after_end_holds",
    "cancel_event.after_wait_caches",
    "refund.after_seat",
    "refund.after_credit",
    "cancel_event.after_refund_all",
    "cancel_event.after_mark_cancelled",
]
PRICE = 100
START_CREDITS = 1000
BUYERS_PER_EVENT = 3
SERVICES = ("orchestrator", "inventory", "users", "orders", "events")


def login(url: str, email: str, password: str) -> str:
    answer = api(url, "POST", "/api/auth/login", body={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["access_token"])


def buy(url: str, token: str, seat_id: str) -> str:
    reserved = api(url, "POST", "/api/reserve", token, {"seat_id": seat_id})
    assert reserved.status_code == 200, reserved.text
    order_id = reserved.json()["data"]["order_id"]
    paid = api(url, "POST", "/api/pay", token, {"order_id": order_id})
    assert paid.status_code == 200, paid.text
    return str(order_id)


def offline(url: str, gate: dict[str, Any], code: str) -> str:
    manifest = Manifest()
    cursor = 0
    while True:
        answer = httpx.get(
            f"{url}/api/gate/manifest?cursor={cursor}",
            headers={"Authorization": f"Bearer {gate['device_token']}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        manifest.apply(answer.json()["data"])
        cursor = answer.json()["data"]["cursor"]
        if not answer.json()["data"]["more"]:
            break
    now = time.time()
    verdict = local_check(code, manifest.keys, now, clock_known=True)
    assert verdict.claims is not None
    return decide_offline(verdict.claims, manifest, set(), now).result


def online(url: str, gate: dict[str, Any], code: str) -> str:
    answer = api(
        url,
        "POST",
        "/api/gate/verify",
        gate["device_token"],
        {
            "qr_payload": code,
            "scan_id": str(uuid.uuid4()),
            "scanned_at": datetime.now(UTC).isoformat(),
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["result"])


async def cancellations_settled(prefix: str) -> bool:
    """No cancellation saga is left running (the holders' purchases wait for payment meanwhile:
    their holds were ended, their sagas fail at their own deadline)."""
    rows = await query(
        prefix, "orchestrator", "SELECT status FROM sagas WHERE kind = 'cancel_event'"
    )
    return all(r["status"] in ("COMPLETED", "FAILED") for r in rows)


@needs_postgres
@pytest.mark.timeout(900)  # eight kill-and-restart cycles of a whole central
async def test_cancellation_survives_a_kill_at_every_step(tmp_path: Path) -> None:
    prefix = fresh_postgres_prefix()
    data_dir = tmp_path / "data"
    # one buyer keeps a seat held at every event (8 holds): the per-user hold limit, an abuse
    # defence tested in tests/abuse, is lifted so this test is about the cancellation alone
    env = {"TR_SAGA_LEASE": "2", "TR_SWEEP_INTERVAL": "0.3", "TR_MAX_HOLDS_PER_USER": "0"}
    central = CentralProcess(data_dir, database_url=prefix, env=env)
    try:
        run_admin(
            data_dir,
            "create-user",
            "--email",
            "admin@example.com",
            "--password",
            "admin password",
            "--role",
            "admin",
            database_url=prefix,
        )
        central.start()
        url = central.url
        admin = login(url, "admin@example.com", "admin password")
        gate = api(url, "POST", "/api/admin/gates", admin, {"hall_id": "HALL-A", "name": "G1"})
        gate_data = gate.json()["data"]

        # Three buyers and one holder, each with a ticket (or an unpaid hold) in every event:
        # one event per fault point.
        tokens = []
        users: list[str] = []
        for i in range(BUYERS_PER_EVENT + 1):
            email = f"b{i}@example.com"
            user = run_admin(
                data_dir,
                "create-user",
                "--email",
                email,
                "--password",
                "buyer password",
                "--credits",
                str(START_CREDITS),
                database_url=prefix,
            )
            users.append(user["user_id"])
            tokens.append(login(url, email, "buyer password"))
        events: dict[str, dict[str, Any]] = {}
        for n, point in enumerate(POINTS):
            event = api(
                url,
                "POST",
                "/api/admin/events",
                admin,
                {
                    "name": f"Crash Night {n}",
                    "venue": {"name": "V"},
                    "hall_id": "HALL-A",
                    "event_date": datetime.now(UTC).replace(microsecond=0).isoformat(),
                    "pricing": {"STD": PRICE},
                    "seats": {"rows": 1, "seats_per_row": BUYERS_PER_EVENT + 2},
                },
            ).json()["data"]
            codes = []
            for i, token in enumerate(tokens):
                seat_id = event["seat_ids"][i]
                if i == BUYERS_PER_EVENT:  # the last one only holds its seat
                    held = api(url, "POST", "/api/reserve", token, {"seat_id": seat_id})
                    assert held.status_code == 200, held.text
                    continue
                buy(url, token, seat_id)
                qr = api(url, "GET", f"/api/tickets/{seat_id}/qr", token)
                assert qr.status_code == 200, qr.text
                codes.append(seat_id)
            events[point] = {"event_id": event["event_id"], "seats": codes}
        central.stop()
        ring = KeyRing.load_or_create(data_dir)

        for point in POINTS:
            event_id = events[point]["event_id"]
            central.start(env={"TR_FAULT": f"{point}:crash"})
            try:
                api(url, "POST", f"/api/admin/events/{event_id}/cancel", admin, {"reason": "x"})
                raise AssertionError(f"central survived the fault point {point}")
            except httpx.TransportError:
                pass  # the process died mid-request, as intended
            assert central.wait_exit() != 0

            central.start()  # no fault: recovery finishes the cancellation
            deadline = time.monotonic() + 60
            while not await cancellations_settled(prefix):
                assert time.monotonic() < deadline, f"cancellation did not finish after {point}"
                await asyncio.sleep(0.3)
            sagas = await query(
                prefix,
                "orchestrator",
                "SELECT kind, status, data FROM sagas WHERE kind = 'cancel_event'",
            )
            mine = [s for s in sagas if json.loads(s["data"])["event_id"] == event_id]
            assert [s["status"] for s in mine] == ["COMPLETED"], (point, mine)
            # asking again answers the finished cancellation
            again = api(url, "POST", f"/api/admin/events/{event_id}/cancel", admin, {"reason": "x"})
            assert again.status_code == 200, again.text
            assert again.json()["data"] == {
                "event_id": event_id,
                "status": "CANCELLED",
                "orders_refunded": BUYERS_PER_EVENT,
                "reason": "x",
            }
            for seat_id in events[point]["seats"]:
                # the buyer's code as it was before the cancellation (epoch 1: one sale), fresh
                # now: a code more than 60 s old would be EXPIRED, which comes first
                code = ring.sign(seat_id, 1, time.time())
                assert online(url, gate_data, code) == "CANCELLED", point
                assert offline(url, gate_data, code) == "CANCELLED", point
            central.stop()

        # Every confirmed order refunded exactly once.
        orders = await query(prefix, "orders", "SELECT order_id, status FROM orders")
        by_status: dict[str, int] = {}
        for o in orders:
            by_status[o["status"]] = by_status.get(o["status"], 0) + 1
        assert by_status.get("CONFIRMED", 0) == 0
        assert by_status["REFUNDED"] == BUYERS_PER_EVENT * len(POINTS)
        refunds = await query(
            prefix,
            "users",
            "SELECT reference_id, COUNT(*) AS n, SUM(amount) AS total FROM credit_ledger "
            "WHERE kind = 'REFUND' GROUP BY reference_id",
        )
        refunded_ids = {o["order_id"] for o in orders if o["status"] == "REFUNDED"}
        assert {r["reference_id"] for r in refunds} == refunded_ids
        assert all(int(r["n"]) == 1 and int(r["total"]) == PRICE for r in refunds)
        # Credits conserved across all users: everyone holds what was granted.
        ledger = await query(
            prefix,
            "users",
            "SELECT user_id, SUM(amount) AS total FROM credit_ledger GROUP BY user_id",
        )
        totals = {r["user_id"]: int(r["total"]) for r in ledger}
        assert all(totals[u] == START_CREDITS for u in users), totals
        cached = await query(prefix, "users", "SELECT user_id, credit_balance FROM users")
        assert all(int(r["credit_balance"]) == totals.get(r["user_id"], 0) for r in cached)
        # No seat of a cancelled event is left SOLD, HELD or CHECKED_IN.
        seats = await query(prefix, "inventory", "SELECT status FROM seats")
        assert {s["status"] for s in seats} == {"AVAILABLE"}
        statuses = await query(prefix, "events", "SELECT status FROM events")
        assert {s["status"] for s in statuses} == {"CANCELLED"}
    finally:
        central.kill()
        await drop_prefix_databases(prefix, SERVICES)
