"""The dashboard against someone on the venue LAN: the PIN lockout counts an attempt before the
PIN is checked (slow bodies cannot slip past it), it locks the guessing address and not the gate,
state-changing requests and the WebSocket refuse other origins, logout ends the session on the
gate, and a deeply nested body is a 400."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gate_agent.agent import GateAgent
from gate_agent.config import load_config
from gate_agent.server import COOKIE, LOGIN_MAX_FAILS, LoginGuard, make_dashboard
from hardware.fake_sources import SyntheticSource
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import free_port

PIN = "4321"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[GateAgent]:
    config = load_config(
        {
            "device_token": "tok",
            "pin": PIN,
            "data_dir": str(tmp_path / "gate"),
            "central": f"http://127.0.0.1:{free_port()}",  # nobody there: offline
        },
        environ={},
    )
    source = SyntheticSource(payload=lambda: "HELLO", width=320, height=240, fps=5)
    a = GateAgent(config, source=source, indicator=FakeIndicator())
    a.start()
    yield a
    a.stop()


def _session(source_ip: str = "127.0.0.1") -> aiohttp.ClientSession:
    """A client from its own loopback address: Linux routes all of 127/8 to this machine, so
    each address stands for another host on the venue LAN."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source_ip, 0)),
        cookie_jar=aiohttp.CookieJar(unsafe=True),  # keep cookies of an IP-address host
    )


async def _slow_login(port: int, pin: str, headers_sent: asyncio.Barrier, go: asyncio.Event) -> int:
    """A login whose body arrives only after every connection has sent its headers."""
    body = json.dumps({"pin": pin}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await headers_sent.wait()
    await go.wait()
    writer.write(body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def test_slow_bodies_get_no_more_pin_checks_than_the_lockout(agent: GateAgent) -> None:
    connections = 40
    async with TestServer(make_dashboard(agent)) as server:
        headers_sent = asyncio.Barrier(connections + 1)
        go = asyncio.Event()
        tasks = [
            asyncio.create_task(_slow_login(server.port, "0000", headers_sent, go))
            for _ in range(connections)
        ]
        await headers_sent.wait()
        # Let every handler reach the point where it waits for its body.
        await asyncio.sleep(0.3)
        go.set()
        statuses = Counter(await asyncio.gather(*tasks))
    # 401 = the PIN was really compared; everything past the lockout is refused unseen.
    assert statuses == {401: LOGIN_MAX_FAILS - 1, 429: connections - LOGIN_MAX_FAILS + 1}, statuses


async def test_a_guessing_address_is_locked_not_the_gate(agent: GateAgent) -> None:
    async with TestServer(make_dashboard(agent)) as server:
        url = str(server.make_url("/api/login"))
        async with _session("127.0.0.2") as guesser, _session("127.0.0.1") as staff:
            for _ in range(LOGIN_MAX_FAILS):
                await (await guesser.post(url, json={"pin": "0000"})).read()
            locked = await guesser.post(url, json={"pin": PIN})
            assert locked.status == 429
            # Staff at another address log in as usual.
            assert (await staff.post(url, json={"pin": PIN})).status == 200


async def test_other_origins_are_refused(agent: GateAgent) -> None:
    async with TestServer(make_dashboard(agent)) as server:
        base = str(server.make_url("")).rstrip("/")
        async with _session() as client:
            evil = {"Origin": "http://evil.example"}
            answer = await client.post(f"{base}/api/login", json={"pin": PIN}, headers=evil)
            assert answer.status == 403 and COOKIE not in answer.cookies
            # The same origin (what the dashboard page sends) works.
            same = {"Origin": base}
            assert (
                await client.post(f"{base}/api/login", json={"pin": PIN}, headers=same)
            ).status == 200
            # A logged-in browser opening a page elsewhere: that page cannot post or listen.
            manual = await client.post(f"{base}/api/manual", json={"code": "X"}, headers=evil)
            assert manual.status == 403
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"{base}/ws", headers=evil)
            assert refused.value.status == 403
            ws = await client.ws_connect(f"{base}/ws", headers=same)
            assert (await ws.receive_json())["type"] == "status"
            await ws.close()


async def test_logout_ends_the_session_on_the_gate(agent: GateAgent) -> None:
    async with TestServer(make_dashboard(agent)) as server:
        base = str(server.make_url("")).rstrip("/")
        async with _session() as client:
            assert (await client.post(f"{base}/api/login", json={"pin": PIN})).status == 200
            cookie = client.cookie_jar.filter_cookies(server.make_url("/"))[COOKIE].value
            assert (await client.post(f"{base}/api/logout")).status == 200
        # The old cookie, replayed by whoever kept a copy, is refused.
        async with _session() as replay:
            answer = await replay.get(
                f"{base}/api/status", headers={"Cookie": f"{COOKIE}={cookie}"}
            )
            assert answer.status == 401


@pytest.mark.parametrize("path", ["/api/login", "/api/manual"])
async def test_deeply_nested_json_is_a_400(agent: GateAgent, path: str) -> None:
    async with TestServer(make_dashboard(agent)) as server:
        base = str(server.make_url("")).rstrip("/")
        async with _session() as client:
            if path != "/api/login":
                assert (await client.post(f"{base}/api/login", json={"pin": PIN})).status == 200
            nested = "[" * 100_000 + "]" * 100_000
            answer = await client.post(
                f"{base}{path}", data=nested, headers={"Content-Type": "application/json"}
            )
            assert answer.status == 400
            assert (await answer.json())["error_code"] == "VALIDATION_ERROR"


def test_the_backstop_over_all_addresses_lets_only_known_staff_addresses_in() -> None:
    guard = LoginGuard(max_fails=5, lock_s=120, global_max_fails=3, global_window_s=600)
    now = 1000.0
    assert guard.claim("10.0.0.9", now) == 0  # the staff's tablet logs in first
    guard.succeeded("10.0.0.9", now)
    for i, address in enumerate(("10.0.0.1", "10.0.0.2", "10.0.0.3")):
        assert guard.claim(address, now + i) == 0
        guard.failed(address, now + i)
    # Three wrong PINs from three addresses: a fresh address must wait, the staff's may try.
    assert guard.claim("10.0.0.4", now + 3) > 0
    assert guard.claim("10.0.0.9", now + 3) == 0
    # Once the window has passed, anyone may try again.
    assert guard.claim("10.0.0.4", now + 601) == 0
