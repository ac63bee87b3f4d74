"""Crash recovery of the transfer saga with real processes on PostgreSQL: for every step boundary of
the transfer (and of the admin's reverse), central is SIGKILLed exactly there (a compiled-in fault
point) and restarted. The saga converges — an interrupted initiation ends FAILED, an interrupted
completion or reverse is finished forward — credits are conserved across all users (every transfer
entry has its opposite, every balance is what the transfer's final state says), and each seat has
exactly one owner, the one the transfer's final state names."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from central_process import CentralProcess, api, query, run_admin, sagas_settled
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres

INITIATE_POINTS = [
    "before_create_record",
    "after_create_record",
    "after_send_otps",
    "after_await_otp",
]
COMPLETE_POINTS = [
    "after_check_consent",
    "after_move_credits",
    "after_update_owner",
    "after_mark_completed",
]
REVERSE_POINTS = ["after_check_disputed", "after_return_seat", "after_return_credits"]
PRICE = 100
AMOUNT = 250
START = 1000
SERVICES = ("orchestrator", "inventory", "users", "orders", "events")


def code(otp_file: Path, user_id: str, transfer_id: str) -> str:
    items = [json.loads(line) for line in otp_file.read_text().splitlines()]
    return str(
        [i for i in items if i["user_id"] == user_id and i["reference_id"] == transfer_id][-1][
            "code"
        ]
    )


def login(url: str, email: str) -> str:
    body = api(url, "POST", "/api/auth/login", body={"email": email, "password": "pw password"})
    return str(body.json()["data"]["access_token"])


def expect_crash(url: str, path: str, token: str, body: object) -> None:
    try:
        api(url, "POST", path, token, body)
    except httpx.TransportError:
        return  # the process died mid-request, as intended
    raise AssertionError("central survived the fault point")


@needs_postgres
async def test_transfer_survives_a_kill_at_every_step_boundary(tmp_path: Path) -> None:
    prefix = fresh_postgres_prefix()
    data_dir = tmp_path / "data"
    otp_file = tmp_path / "otp.jsonl"
    env = {"TR_SAGA_LEASE": "2", "TR_SWEEP_INTERVAL": "0.3", "TR_OTP_DELIVERY": f"file:{otp_file}"}
    central = CentralProcess(data_dir, database_url=prefix, env=env)
    points = INITIATE_POINTS + COMPLETE_POINTS + REVERSE_POINTS
    try:

        def user(email: str, role: str = "customer", credits: int = START) -> dict[str, Any]:
            return run_admin(
                data_dir,
                "create-user",
                *("--email", email, "--password", "pw password", "--role", role),
                *("--credits", str(credits)),
                database_url=prefix,
            )

        user("admin@example.com", role="admin", credits=0)
        pairs = {
            p: (user(f"s{i}@example.com"), user(f"b{i}@example.com")) for i, p in enumerate(points)
        }
        central.start()
        url = central.url
        event = api(
            url,
            "POST",
            "/api/admin/events",
            login(url, "admin@example.com"),
            {
                "name": "Crash Swap",
                "venue": {"name": "V"},
                "hall_id": "HALL-A",
                "event_date": "2099-01-01T20:00:00Z",
                "pricing": {"STD": PRICE},
                "seats": {"rows": 1, "seats_per_row": len(points)},
            },
        ).json()["data"]
        seats = dict(zip(points, event["seat_ids"], strict=True))
        for point, (seller, _) in pairs.items():  # each seller buys the seat it will pass on
            token = login(url, seller["email"])
            order = api(url, "POST", "/api/reserve", token, {"seat_id": seats[point]}).json()
            paid = api(url, "POST", "/api/pay", token, {"order_id": order["data"]["order_id"]})
            assert paid.status_code == 200, paid.text
        central.stop()

        transfer_ids: dict[str, str] = {}
        for point in points:
            seller, buyer = pairs[point]
            kind = "transfer_reverse" if point in REVERSE_POINTS else "transfer"
            central.start(env={"TR_FAULT": f"{kind}.{point}:crash"})
            s_token, b_token = login(url, seller["email"]), login(url, buyer["email"])
            body = {
                "seat_id": seats[point],
                "buyer_email": buyer["email"],
                "credits_amount": AMOUNT,
            }
            if point in INITIATE_POINTS:
                expect_crash(url, "/api/transfer/initiate", s_token, body)
            else:
                started = api(url, "POST", "/api/transfer/initiate", s_token, body)
                assert started.status_code == 201, started.text
                tid = started.json()["data"]["transfer_id"]
                transfer_ids[point] = tid
                for token, who in ((s_token, seller), (b_token, buyer)):
                    confirm = {"transfer_id": tid, "otp_code": code(otp_file, who["user_id"], tid)}
                    if point in COMPLETE_POINTS and who is buyer:
                        expect_crash(url, "/api/transfer/confirm", token, confirm)
                    else:
                        done = api(url, "POST", "/api/transfer/confirm", token, confirm)
                        assert done.status_code == 200, done.text
                if point in REVERSE_POINTS:
                    disputed = api(
                        url,
                        "POST",
                        "/api/transfer/dispute",
                        b_token,
                        {"transfer_id": tid, "reason": "crash test"},
                    )
                    assert disputed.status_code == 200, disputed.text
                    admin = login(url, "admin@example.com")
                    expect_crash(url, "/api/transfer/reverse", admin, {"transfer_id": tid})
            assert central.wait_exit() != 0

            central.start()  # no fault: recovery takes over once the dead runner's lease lapses
            deadline = time.monotonic() + 30
            while not await sagas_settled(prefix):
                assert time.monotonic() < deadline, f"saga did not converge after {point}"
                await asyncio.sleep(0.3)
            central.stop()

        # Every transfer in a final state that matches where the seat and the credits are.
        transfers = {
            r["seat_id"]: r
            for r in await query(
                prefix, "orders", "SELECT seat_id, transfer_id, status FROM transfers"
            )
        }
        seat_rows = {
            r["seat_id"]: r
            for r in await query(
                prefix, "inventory", "SELECT seat_id, status, owner_user_id FROM seats"
            )
        }
        ledger = await query(prefix, "users", "SELECT user_id, amount, kind FROM credit_ledger")
        balance: dict[str, int] = {}
        for row in ledger:
            balance[row["user_id"]] = balance.get(row["user_id"], 0) + int(row["amount"])
        moves = [int(r["amount"]) for r in ledger if r["kind"] in ("TRANSFER_OUT", "TRANSFER_IN")]
        assert sum(moves) == 0  # conserved: every credit that left a user arrived at another
        expected = {
            **{p: "FAILED" for p in INITIATE_POINTS},
            **{p: "COMPLETED" for p in COMPLETE_POINTS},
            **{p: "REVERSED" for p in REVERSE_POINTS},
        }
        for point in points:
            seller, buyer = pairs[point]
            seat = seat_rows[seats[point]]
            final = transfers.get(seats[point])
            if point == "before_create_record":
                assert final is None  # the record was never written
            else:
                assert final is not None and final["status"] == expected[point], (point, final)
            assert seat["status"] == "SOLD"
            if expected[point] == "COMPLETED":
                assert seat["owner_user_id"] == buyer["user_id"], point
                assert (balance[seller["user_id"]], balance[buyer["user_id"]]) == (
                    START - PRICE + AMOUNT,
                    START - AMOUNT,
                ), point
            else:
                assert seat["owner_user_id"] == seller["user_id"], point
                assert (balance[seller["user_id"]], balance[buyer["user_id"]]) == (
                    START - PRICE,
                    START,
                ), point
        assert sum(balance.values()) == START * 2 * len(points) - PRICE * len(points)
        assert not [t for t in transfers.values() if t["status"] in ("INITIATED", "PENDING_OTP")]
    finally:
        central.kill()
        await drop_prefix_databases(prefix, SERVICES)
