"""The dashboard's HTTP side against a running in-process gate agent: the PIN lockout, what needs
a session, the Secure cookie over HTTPS, the page's files, and the MJPEG preview (frames with the
code outlined, at a bounded rate, a bounded number of viewers)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gate_agent.agent import GateAgent
from gate_agent.config import load_config
from gate_agent.server import PREVIEW_OPTS, make_dashboard
from hardware.fake_sources import SyntheticSource
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import free_port, wait_until

PIN = "4321"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[GateAgent]:
    config = load_config(
        {
            "device_token": "tok",
            "pin": PIN,
            "data_dir": str(tmp_path / "gate"),
            "central": f"http://127.0.0.1:{free_port()}",  # nobody there: the gate is offline
        },
        environ={},
    )
    # the camera keeps showing one QR code, as a ticket held in front of it
    source = SyntheticSource(payload=lambda: "HELLO-PREVIEW", width=640, height=480, fps=30)
    a = GateAgent(config, source=source, indicator=FakeIndicator())
    a.start()
    yield a
    a.stop()


async def _login(client: TestClient) -> None:
    assert (await client.post("/api/login", json={"pin": PIN})).status == 200


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Polls check() without blocking the event loop the test server runs on."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.02)


async def test_five_wrong_pins_lock_login_then_it_unlocks(agent: GateAgent) -> None:
    clock = FakeClock()
    app = make_dashboard(agent, login_lock_s=1.5, login_clock=clock)
    async with TestClient(TestServer(app)) as staff, TestClient(TestServer(app)) as guesser:
        await _login(staff)  # a session opened before the guessing
        for left in (4, 3, 2, 1):
            answer = await guesser.post("/api/login", json={"pin": "0000"})
            assert answer.status == 401 and (await answer.json())["tries_left"] == left
        locked = await guesser.post("/api/login", json={"pin": "0000"})
        assert locked.status == 429 and int(locked.headers["Retry-After"]) >= 1
        # the right PIN does not get through a lock, from anyone
        right = await guesser.post("/api/login", json={"pin": PIN})
        assert right.status == 429 and (await right.json())["error_code"] == "RATE_LIMITED"
        assert (await staff.get("/api/status")).status == 200  # staff on duty stay logged in
        clock.now += 1.4  # not yet: the lock lasts login_lock_s
        assert (await guesser.post("/api/login", json={"pin": PIN})).status == 429
        clock.now += 0.2
        assert (await guesser.post("/api/login", json={"pin": PIN})).status == 200
        # a success clears the count: four more wrong PINs do not lock yet
        for _ in range(4):
            assert (await guesser.post("/api/login", json={"pin": "1111"})).status == 401
        assert (await guesser.post("/api/login", json={"pin": PIN})).status == 200


async def test_everything_but_the_page_needs_a_session(agent: GateAgent) -> None:
    async with TestClient(TestServer(make_dashboard(agent))) as client:
        page = await client.get("/")
        assert page.status == 200 and 'id="pin"' in await page.text()
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        for path in ("/api/status", "/api/scans", "/api/preview.mjpg"):
            assert (await client.get(path)).status == 401, path
        assert (await client.post("/api/manual", json={"code": "x"})).status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws")
        assert refused.value.status == 401
        # the page's scripts carry no data and load before login
        js = await client.get("/static/app.js")
        assert js.status == 200 and "WebSocket" in await js.text()
        assert (await client.get("/static/../server.py")).status in (403, 404)
        await _login(client)
        assert 'id="verdict"' in await (await client.get("/")).text()
        assert (await client.get("/api/status")).status == 200
        await client.post("/api/logout")
        assert (await client.get("/api/status")).status == 401


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    return ctx


async def test_session_cookie_is_secure_over_https_only(agent: GateAgent, tmp_path: Path) -> None:
    runner = web.AppRunner(make_dashboard(agent))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=_self_signed(tmp_path)).start()
    try:
        async with aiohttp.ClientSession() as session:
            answer = await session.post(
                f"https://127.0.0.1:{port}/api/login", json={"pin": PIN}, ssl=False
            )
            cookie = answer.headers["Set-Cookie"]
            assert answer.status == 200
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        await runner.cleanup()
    async with TestClient(TestServer(make_dashboard(agent))) as plain:
        cookie = (await plain.post("/api/login", json={"pin": PIN})).headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "Secure" not in cookie


def _parts(body: bytes) -> list[bytes]:
    out = []
    for chunk in body.split(b"--frame\r\n")[1:]:
        head, _, rest = chunk.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        out.append(rest[:length])
    return out


async def _read_for(resp: aiohttp.ClientResponse, seconds: float) -> bytes:
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(
                resp.content.readany(), max(0.01, deadline - time.monotonic())
            )
        except TimeoutError:
            break
        data += chunk
    return data


async def test_preview_outlines_the_code_at_a_bounded_rate(agent: GateAgent) -> None:
    wait_until(lambda: agent.pipeline.last_frame and agent.pipeline.last_frame.corners, 10)
    fps, seconds = 4.0, 2.0
    app = make_dashboard(agent, preview_fps=fps, preview_max_clients=2)
    async with TestClient(TestServer(app)) as client:
        await _login(client)
        decoded_before = agent.pipeline.decoded_frames
        resp = await client.get("/api/preview.mjpg")
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        frames = _parts(await _read_for(resp, seconds))
        decoded = agent.pipeline.decoded_frames - decoded_before
        # the camera decoded far more frames than the preview sent: the rate is the preview's
        assert 1 <= len(frames) <= fps * seconds + 2 < decoded, (len(frames), decoded)
        image = cv2.imdecode(np.frombuffer(frames[-1], np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] == 480  # scaled down from 640
        b, g, r = image[..., 0].astype(int), image[..., 1].astype(int), image[..., 2].astype(int)
        outline = (g > 150) & (r < 90) & (b < 90)
        assert outline.sum() > 200, "the detected code is outlined in green"
        # a bounded number of viewers
        second = await client.get("/api/preview.mjpg")
        assert second.status == 200
        third = await client.get("/api/preview.mjpg")
        assert third.status == 503
        second.close()
        resp.close()
        # a viewer that left frees its place (once the server has seen it go)
        await eventually(lambda: app[PREVIEW_OPTS]["clients"] < 2)
        again = await client.get("/api/preview.mjpg")
        assert again.status == 200
        again.close()
