"""A real gate agent (`python -m gate_agent run`, its own process) and the gate endpoints of a
real central, attacked from the venue LAN: PIN guessing with slow bodies and from many addresses,
another site's page driving the dashboard, a copied cookie after logout, nested bodies, path
traversal, and forged, tampered and replayed ticket codes."""

from __future__ import annotations

import asyncio
import json
import stat
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from central.signing import KeyRing
from tests.abuse.conftest import Central
from tests.abuse.table import Ledger
from tests.gate_agent.gate_proc import PIN, GateProc


@pytest.fixture(scope="module")
def gate(central: Central, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    r = httpx.post(
        central.url + "/api/admin/gates",
        json={"hall_id": "HALL-A", "name": "North"},
        headers=central.auth(central.admin_token),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    token = r.json()["data"]["device_token"]
    proc = GateProc(central.url, token, tmp_path_factory.mktemp("gate"))
    proc.start()
    try:
        yield {"proc": proc, "token": token, "url": f"http://127.0.0.1:{proc.port}"}
    finally:
        proc.stop()


def _from(address: str) -> aiohttp.ClientSession:
    """A client on its own loopback address: each stands for another host on the venue LAN."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(address, 0)),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )


async def _slow_login(port: int, address: str, sent: asyncio.Barrier, go: asyncio.Event) -> int:
    body = json.dumps({"pin": "0000"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    writer.write(
        f"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    await sent.wait()
    await go.wait()
    writer.write(body)
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return int(line.split()[1])


async def test_pin_guessing_with_slow_bodies_and_many_addresses(
    gate: dict[str, Any], ledger: Ledger
) -> None:
    port = gate["proc"].port
    sent, go = asyncio.Barrier(41), asyncio.Event()
    tasks = [asyncio.create_task(_slow_login(port, "127.0.0.3", sent, go)) for _ in range(40)]
    await sent.wait()
    await asyncio.sleep(0.3)  # every handler is waiting for its body
    go.set()
    statuses = Counter(await asyncio.gather(*tasks))
    ledger.attempt(
        "gate",
        "40 PIN guesses whose bodies arrive together, late",
        attempts=40,
        expected="4×401, 36×429",
        outcome=", ".join(f"{n}×{s}" for s, n in sorted(statuses.items())),
    )
    async with _from("127.0.0.3") as guesser, _from("127.0.0.1") as staff:
        right = await guesser.post(gate["url"] + "/api/login", json={"pin": PIN})
        staff_login = await staff.post(gate["url"] + "/api/login", json={"pin": PIN})
    ledger.attempt(
        "gate",
        "right PIN from the locked address / from the staff's address",
        attempts=2,
        expected="429 / 200",
        outcome=f"{right.status} / {staff_login.status}",
    )


async def test_another_sites_page_cannot_drive_the_dashboard(
    gate: dict[str, Any], ledger: Ledger
) -> None:
    evil = {"Origin": "http://evil.example"}
    url = gate["url"]
    async with _from("127.0.0.4") as browser:
        login = await browser.post(url + "/api/login", json={"pin": PIN}, headers=evil)
        assert (await browser.post(url + "/api/login", json={"pin": PIN})).status == 200
        manual = await browser.post(url + "/api/manual", json={"code": "TR1:X"}, headers=evil)
        try:
            ws = await browser.ws_connect(url.replace("http", "ws") + "/ws", headers=evil)
            await ws.close()
            ws_status = 101
        except aiohttp.WSServerHandshakeError as err:
            ws_status = err.status
    ledger.attempt(
        "gate",
        "cross-origin login / manual entry / WebSocket",
        attempts=3,
        expected="403 / 403 / 403",
        outcome=f"{login.status} / {manual.status} / {ws_status}",
    )


async def test_logout_kills_the_cookie_and_bodies_are_checked(
    gate: dict[str, Any], ledger: Ledger
) -> None:
    url = gate["url"]
    async with _from("127.0.0.5") as browser:
        assert (await browser.post(url + "/api/login", json={"pin": PIN})).status == 200
        cookie = next(c.value for c in browser.cookie_jar if c.key == "gate_session")
        nested = "[" * 100_000 + "]" * 100_000
        answers = [
            (
                await browser.post(
                    url + p, data=nested, headers={"Content-Type": "application/json"}
                )
            ).status
            for p in ("/api/login", "/api/manual")
        ]
        traversal = [
            (await browser.get(url + p)).status
            for p in (
                "/static/../gate.sqlite3",
                "/static/..%2f..%2fgate.sqlite3",
                "/static/%2e%2e/server.py",
            )
        ]
        assert (await browser.post(url + "/api/logout")).status == 200
    async with _from("127.0.0.5") as thief:
        replay = await thief.get(url + "/api/status", headers={"Cookie": f"gate_session={cookie}"})
    ledger.attempt(
        "gate",
        "a copied session cookie after logout",
        attempts=1,
        expected="401",
        outcome=str(replay.status),
    )
    ledger.attempt(
        "gate",
        "JSON nested 100000 deep to login / manual entry",
        attempts=2,
        expected="400 / 400",
        outcome=" / ".join(map(str, answers)),
    )
    ledger.attempt(
        "gate",
        "path traversal under /static/",
        attempts=3,
        expected="no file served",
        outcome="no file served" if all(s in (403, 404) for s in traversal) else str(traversal),
    )


def test_the_gate_keeps_its_files_private(gate: dict[str, Any], ledger: Ledger) -> None:
    data: Path = gate["proc"].data_dir
    files = [p for p in data.rglob("*") if p.is_file()]
    loose = [
        f"{p.name} {stat.S_IMODE(p.stat().st_mode):o}"
        for p in [data, *files]
        if stat.S_IMODE(p.stat().st_mode) & ~(0o700 if p.is_dir() else 0o600)
    ]
    ledger.attempt(
        "files",
        "another local account reads the gate's outbox and sessions",
        attempts=len(files) + 1,
        expected="dir 0700, files 0600",
        outcome="dir 0700, files 0600" if not loose else ", ".join(loose),
    )


async def test_forged_tampered_and_replayed_codes(
    central: Central, gate: dict[str, Any], ledger: Ledger
) -> None:
    owner = await central.user(credits=50)
    event = await central.event(rows=1, per_row=2)
    seat_id = event["seat_ids"][0]
    device = central.auth(gate["token"])
    async with central.client() as c:
        r = await c.post(
            "/api/reserve", json={"seat_id": seat_id}, headers=central.auth(owner["token"])
        )
        order_id = r.json()["data"]["order_id"]
        r = await c.post(
            "/api/pay", json={"order_id": order_id}, headers=central.auth(owner["token"])
        )
        assert r.status_code == 200, r.text
        r = await c.get(f"/api/tickets/{seat_id}/qr", headers=central.auth(owner["token"]))
        code = r.json()["data"]["qr_payload"]
        tampered = code[:-3] + ("A" if code[-3] != "A" else "B") + code[-2:]

        async def verify(payload: str) -> str:
            r = await c.post(
                "/api/gate/verify",
                json={
                    "qr_payload": payload,
                    "scan_id": uuid.uuid4().hex,
                    "scanned_at": time.time(),
                },
                headers=device,
            )
            assert r.status_code == 200, r.text
            return str(r.json()["data"]["result"])

        # Central's own key (read from its data directory) signing a code 2 minutes old.
        keys = KeyRing.load_or_create(central.data_dir)
        stale = keys.sign(seat_id, 1, time.time() - 120)
        results = {
            "forged": await verify("TR1:" + "A" * 135),
            "tampered": await verify(tampered),
            "expired": await verify(stale),
            "genuine": await verify(code),
            "replayed": await verify(code),
        }
        r = await c.post("/api/admin/events", json={"name": "x"}, headers=device)
        admin_with_device = r.status_code
    ledger.attempt(
        "codes",
        "forged / tampered / expired / genuine / replayed code at a gate",
        attempts=5,
        expected="INVALID / INVALID / EXPIRED / SUCCESS / DUPLICATE",
        outcome=" / ".join(results.values()),
    )
    ledger.attempt(
        "roles",
        "a gate's device token on an admin endpoint",
        attempts=1,
        expected="401",
        outcome=str(admin_with_device),
    )
