"""The ticket's QR as an image (SVG and PNG) decodes with zxing-cpp to a token that verifies and
that a gate admits; and CORS only for the origins the operator named (`--cors-origin`)."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from cluster import Cluster, running_cluster
from conftest import CHROMIUM, needs_chromium
from PIL import Image
from verify_support import add_gate, buy, gate_verify, keyring, make_event

from central.config import ConfigError, load_settings
from proto.ticket_token import verify_token

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://tickets.example.com"


def decode(image: Image.Image) -> tuple[str, dict[str, Any]]:
    [found] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return found.text, dict(found.extra)


async def fetch(c: Cluster, path: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with c.session.get(c.url + path, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_png_decodes_to_a_token_that_verifies_and_admits(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        status, headers, body = await fetch(c, f"/api/tickets/{seat_id}/qr.png", buyer["token"])
        assert status == 200, body[:200]
        assert headers["Content-Type"] == "image/png"
        assert headers["Cache-Control"] == "no-store"
        text, extra = decode(Image.open(io.BytesIO(body)))
        assert (extra["ECLevel"], int(extra["Version"]) <= 6) == ("M", True), extra
        verdict = verify_token(text, keyring(c).public_keys(), time.time())
        assert verdict.result == "OK" and verdict.claims is not None
        assert verdict.claims.seat_id == seat_id
        expires = headers["X-QR-Expires-At"]
        assert abs(_unix(expires) - (verdict.claims.issued_at + 60)) < 1
        gate = await add_gate(c, event["admin"]["token"])
        _, answer = await gate_verify(c, gate, text)
        assert answer["data"]["result"] == "SUCCESS", answer
        # a checked-in ticket has no code any more
        status, _, body = await fetch(c, f"/api/tickets/{seat_id}/qr.png", buyer["token"])
        assert status == 409 and b"SEAT_UNAVAILABLE" in body


async def test_qr_images_are_for_the_owner_only(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        seat_id = event["seat_ids"][0]
        await buy(c, seat_id)
        other = await c.make_user()
        for kind in ("svg", "png"):
            path = f"/api/tickets/{seat_id}/qr.{kind}"
            status, _, body = await fetch(c, path, None)
            assert status == 401 and b"UNAUTHORIZED" in body
            status, _, body = await fetch(c, path, other["token"])
            assert status == 403 and b"NOT_SEAT_OWNER" in body
            status, _, body = await fetch(
                c, f"/api/tickets/{event['seat_ids'][1]}/qr.{kind}", other["token"]
            )
            assert status == 403 and b"NOT_SEAT_OWNER" in body  # nobody owns it: not yours
            missing = "00000000-0000-4000-8000-000000000000"
            status, _, body = await fetch(c, f"/api/tickets/{missing}/qr.{kind}", other["token"])
            assert status == 404 and b"SEAT_NOT_FOUND" in body
            status, _, body = await fetch(c, f"/api/tickets/nope/qr.{kind}", other["token"])
            assert status == 400 and b"INVALID_UUID" in body


@needs_chromium
async def test_svg_drawn_by_a_browser_decodes_to_a_token_that_verifies(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=1)
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        status, headers, body = await fetch(c, f"/api/tickets/{seat_id}/qr.svg", buyer["token"])
        assert status == 200
        assert headers["Content-Type"] == "image/svg+xml"
        assert headers["Cache-Control"] == "no-store"
        assert b"<script" not in body
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(viewport={"width": 500, "height": 500})
                src = "data:image/svg+xml;base64," + base64.b64encode(body).decode()
                await page.set_content(f'<body style="margin:0"><img id="qr" src="{src}"></body>')
                await page.wait_for_function("document.getElementById('qr').complete")
                shot = await page.locator("#qr").screenshot()
            finally:
                await browser.close()
        text, extra = decode(Image.open(io.BytesIO(shot)))
        assert int(extra["Version"]) <= 6 and extra["ECLevel"] == "M"
        verdict = verify_token(text, keyring(c).public_keys(), time.time())
        assert verdict.result == "OK" and verdict.claims is not None
        assert verdict.claims.seat_id == seat_id


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_cors_only_for_named_origins(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, cors_origin=[ORIGIN]) as c:
        user = await c.make_user()
        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        }
        async with c.session.options(c.url + "/api/me", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
            assert "GET" in resp.headers["Access-Control-Allow-Methods"]
        headers = {"Origin": ORIGIN, "Authorization": f"Bearer {user['token']}"}
        async with c.session.get(c.url + "/api/me", headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "X-Server-Time" in resp.headers["Access-Control-Expose-Headers"]
            assert "Origin" in resp.headers.getall("Vary")
        # errors carry it too, or the page could not read why it failed
        async with c.session.get(c.url + "/api/me", headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 401
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        # any other origin gets nothing: no preflight answer, no allow header
        for other in ("https://evil.example.com", "http://tickets.example.com", "null"):
            async with c.session.options(
                c.url + "/api/me", headers={**preflight, "Origin": other}
            ) as resp:
                assert resp.status != 204
                assert "Access-Control-Allow-Origin" not in resp.headers
            async with c.session.get(c.url + "/api/events", headers={"Origin": other}) as resp:
                assert resp.status == 200
                assert "Access-Control-Allow-Origin" not in resp.headers


async def test_no_cors_unless_configured(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        async with c.session.get(c.url + "/api/events", headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 200
            assert "Access-Control-Allow-Origin" not in resp.headers
        preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        async with c.session.options(c.url + "/api/events", headers=preflight) as resp:
            assert resp.status == 405
            assert "Access-Control-Allow-Origin" not in resp.headers


def test_cors_origin_flag_and_environment(tmp_path: Path) -> None:
    base = {"data_dir": str(tmp_path)}
    flags = {**base, "cors_origin": ["https://A.example.com", "http://localhost:5173/"]}
    settings = load_settings(flags, env={})
    assert settings.cors_origin == ["https://a.example.com", "http://localhost:5173"]
    env = {"TR_CORS_ORIGIN": "https://one.example, https://two.example:8443"}
    settings = load_settings(base, env=env)
    assert settings.cors_origin == ["https://one.example", "https://two.example:8443"]
    assert load_settings(base, env={}).cors_origin == []
    for bad in ("*", "tickets.example.com", "https://x.example/path", "ftp://x.example"):
        with pytest.raises(ConfigError, match="--cors-origin"):
            load_settings({**base, "cors_origin": [bad]}, env={})


def test_serve_refuses_a_wildcard_origin_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "central",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--cors-origin",
            "*",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --cors-origin"), done.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "central", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "--cors-origin" in helped.stdout and "repeatable" in helped.stdout
