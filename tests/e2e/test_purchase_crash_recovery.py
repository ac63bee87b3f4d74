"""Crash recovery with real processes on PostgreSQL: for every step boundary of the purchase saga,
central is SIGKILLed exactly there (a compiled-in fault point) and restarted; the saga converges —
rolled back before payment began, completed forward after — and across all users the credits spent
equal the sum of CONFIRMED orders, every confirmed seat is SOLD to its buyer, no seat stays HELD."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
from central_process import CentralProcess, api, query, run_admin, sagas_settled
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres

RESERVE_POINTS = ["after_reserve_seat", "after_create_order", "after_publish_hold"]
PAY_POINTS = [
    "after_otp",
    "after_deduct",
    "after_confirm_order",
    "after_confirm_seat",
    "after_ticket",
]
PRICE = 100
START_CREDITS = 1000
SERVICES = ("orchestrator", "inventory", "users", "orders", "events")


@needs_postgres
async def test_purchase_survives_a_kill_at_every_step_boundary(tmp_path: Path) -> None:
    prefix = fresh_postgres_prefix()
    data_dir = tmp_path / "data"
    otp_file = tmp_path / "otp.jsonl"
    env = {"TR_SAGA_LEASE": "2", "TR_SWEEP_INTERVAL": "0.3", "TR_OTP_DELIVERY": f"file:{otp_file}"}
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
        admin = api(
            central.url,
            "POST",
            "/api/auth/login",
            body={"email": "admin@example.com", "password": "admin password"},
        ).json()["data"]
        points = RESERVE_POINTS + PAY_POINTS
        event = api(
            central.url,
            "POST",
            "/api/admin/events",
            admin["access_token"],
            {
                "name": "Crash Night",
                "venue": {"name": "V"},
                "hall_id": "HALL-A",
                "event_date": "2099-01-01T20:00:00Z",
                "pricing": {"STD": PRICE},
                "seats": {"rows": 1, "seats_per_row": len(points)},
            },
        ).json()["data"]
        buyers = {}
        for i, point in enumerate(points):
            flagged = point == "after_otp"
            user = run_admin(
                data_dir,
                "create-user",
                "--email",
                f"b{i}@example.com",
                "--password",
                "buyer password",
                "--credits",
                str(START_CREDITS),
                *(["--flagged"] if flagged else []),
                database_url=prefix,
            )
            buyers[point] = user
        central.stop()

        for point, seat_id in zip(points, event["seat_ids"], strict=True):
            central.start(env={"TR_FAULT": f"purchase.{point}:crash"})
            email = buyers[point]["email"]
            token = api(
                central.url,
                "POST",
                "/api/auth/login",
                body={"email": email, "password": "buyer password"},
            ).json()["data"]["access_token"]
            try:
                reserved = api(central.url, "POST", "/api/reserve", token, {"seat_id": seat_id})
                order_id = reserved.json()["data"]["order_id"]
                if point == "after_otp":
                    assert (
                        api(
                            central.url, "POST", "/api/pay", token, {"order_id": order_id}
                        ).status_code
                        == 428
                    )
                    code = json.loads(otp_file.read_text().splitlines()[-1])["code"]
                    ok = api(
                        central.url,
                        "POST",
                        "/api/verify-otp",
                        token,
                        {"context": "purchase", "reference_id": order_id, "otp_code": code},
                    )
                    assert ok.status_code == 200, ok.text
                api(central.url, "POST", "/api/pay", token, {"order_id": order_id})
                raise AssertionError(f"central survived the fault point {point}")
            except httpx.TransportError:
                pass  # the process died mid-request, as intended
            assert central.wait_exit() != 0

            central.start()  # no fault: recovery takes over once the dead runner's lease lapses
            deadline = time.monotonic() + 30
            while not await sagas_settled(prefix):
                assert time.monotonic() < deadline, f"saga did not converge after {point}"
                await asyncio.sleep(0.3)
            sagas = await query(prefix, "orchestrator", "SELECT status, data FROM sagas")
            mine = [s for s in sagas if json.loads(s["data"])["seat_id"] == seat_id]
            assert len(mine) == 1
            expected = "FAILED" if point in RESERVE_POINTS else "COMPLETED"
            assert mine[0]["status"] == expected, (point, mine)
            central.stop()

        # Conservation across all users, and seats that match their orders.
        balances = await query(
            prefix,
            "users",
            "SELECT user_id, COALESCE(SUM(amount), 0) AS total FROM credit_ledger GROUP BY user_id",
        )
        granted = START_CREDITS * len(points)
        buyer_ids = {b["user_id"] for b in buyers.values()}
        held = sum(int(r["total"]) for r in balances if r["user_id"] in buyer_ids)
        orders = await query(
            prefix, "orders", "SELECT seat_id, user_id, status, credits_charged FROM orders"
        )
        confirmed = [o for o in orders if o["status"] == "CONFIRMED"]
        assert granted - held == sum(int(o["credits_charged"]) for o in confirmed)
        assert len(confirmed) == len(PAY_POINTS)
        seats = {
            r["seat_id"]: r
            for r in await query(
                prefix, "inventory", "SELECT seat_id, status, owner_user_id FROM seats"
            )
        }
        for order in confirmed:
            assert (
                seats[order["seat_id"]]["status"],
                seats[order["seat_id"]]["owner_user_id"],
            ) == ("SOLD", order["user_id"])
        assert not [s for s in seats.values() if s["status"] == "HELD"]
        sold = {s for s, r in seats.items() if r["status"] == "SOLD"}
        assert sold == {o["seat_id"] for o in confirmed}
    finally:
        central.kill()
        await drop_prefix_databases(prefix, SERVICES)
