"""The HTTP layer of a real central under attack: huge and nested bodies, huge headers, clients
that send slowly or go away mid-request, and /metrics from outside the operator's networks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.abuse.conftest import BODY_TIMEOUT_S, Central
from tests.abuse.table import Ledger
from tests.central_process import CentralProcess


def _server_errors(central: Central) -> int:
    """5xx answers counted by the orchestrator's own metrics (served to loopback)."""
    text = httpx.get(central.url + "/metrics", timeout=10).text
    return sum(
        int(float(m.group(1)))
        for m in re.finditer(r'http_requests_total\{[^}]*status="5\d\d"[^}]*\} (\S+)', text)
    )


def _tracebacks(central: Central) -> int:
    return central.proc.log_path.read_text().count("Traceback")


async def _raw(port: int, head: bytes, body: bytes = b"", *, close_after: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body)
    await writer.drain()
    if close_after:
        writer.close()
        return b""
    try:
        return await asyncio.wait_for(reader.read(4096), timeout=BODY_TIMEOUT_S * 5)
    finally:
        writer.close()


async def test_bodies_headers_and_clients_that_misbehave(central: Central, ledger: Ledger) -> None:
    errors_before, tracebacks_before = _server_errors(central), _tracebacks(central)
    async with central.client() as c:
        huge = await c.post(
            "/api/auth/login",
            content=b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        ledger.attempt(
            "http", "a 2 MiB body", attempts=1, expected="413", outcome=str(huge.status_code)
        )
        nested = await c.post(
            "/api/auth/login",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"Content-Type": "application/json"},
        )
        ledger.attempt(
            "http",
            "JSON nested 100000 deep",
            attempts=1,
            expected="400",
            outcome=str(nested.status_code),
        )
    port = central.proc.port
    big_header = await _raw(
        port, b"GET /api/events HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    )
    ledger.attempt(
        "http",
        "a 64 KiB header",
        attempts=1,
        expected="400",
        outcome=big_header.split(b"\r\n", 1)[0].split(b" ")[1].decode()
        if big_header
        else "no answer",
    )
    head = (
        b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    await asyncio.gather(*(_raw(port, head, b'{"email": "', close_after=True) for _ in range(10)))
    slow = await _raw(port, head, b'{"email": "')
    ledger.attempt(
        "http",
        f"a body that stops arriving (read timeout {BODY_TIMEOUT_S} s)",
        attempts=1,
        expected="408",
        outcome=slow.split(b"\r\n", 1)[0].split(b" ")[1].decode() if slow else "no answer",
    )
    await asyncio.sleep(0.5)  # the disconnected requests' handlers finish
    errors = _server_errors(central) - errors_before
    tracebacks = _tracebacks(central) - tracebacks_before
    ledger.attempt(
        "http",
        "10 clients gone mid-body, huge header, slow body",
        attempts=12,
        expected="0 counted as 5xx, 0 tracebacks logged",
        outcome=f"{errors} counted as 5xx, {tracebacks} tracebacks logged",
    )


@pytest.fixture
def fenced_central(tmp_path: Path) -> Iterator[CentralProcess]:
    proc = CentralProcess(
        tmp_path / "data", args=["--host", "0.0.0.0", "--metrics-networks", "127.0.0.1/32"]
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_metrics_only_for_the_operators_networks(
    fenced_central: CentralProcess, ledger: Ledger
) -> None:
    url = fenced_central.url + "/metrics"
    inside = httpx.get(url, timeout=10)
    # Another host stands in: 127.0.0.2 is outside the configured 127.0.0.1/32.
    outside_transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=outside_transport, timeout=10) as other:
        outside = other.get(url)
        health = other.get(fenced_central.url + "/health")
    ledger.attempt(
        "http",
        "GET /metrics from inside / outside the operator's networks",
        attempts=2,
        expected="200 / 403",
        outcome=f"{inside.status_code} / {outside.status_code}",
    )
    assert health.status_code == 200  # the public health check stays public
