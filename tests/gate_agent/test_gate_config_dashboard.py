"""Config sources and one-line errors; the dashboard's PIN login, session cookie and endpoints."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gate_agent.agent import GateAgent
from gate_agent.config import ConfigError, load_config
from gate_agent.server import make_dashboard
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import PYTHON, REPO, free_port
from tests.gate_agent.offline_world import make_world

BASE = {"device_token": "tok", "pin": "1234"}


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(
        'camera = "synthetic"\ndecoder = "pyzbar"\ndashboard_port = 8090\npin = "9999"\n'
    )
    config = load_config(
        {"device_token": "tok", "dashboard_port": "8091"},
        config_file=path,
        environ={"TR_GATE_DECODER": "zxing"},
    )
    assert (config.camera, config.decoder, config.dashboard_port, config.pin) == (
        "synthetic",
        "zxing",
        8091,
        "9999",
    )


@pytest.mark.parametrize(
    ("flags", "env", "needle"),
    [
        ({"decoder": "zbar"}, {}, "decoder (--decoder): must be one of zxing, pyzbar"),
        ({}, {"TR_GATE_DASHBOARD_PORT": "99999"}, "dashboard_port (TR_GATE_DASHBOARD_PORT)"),
        ({"central": "ftp://x"}, {}, "central (--central): must be an http:// or https:// URL"),
        (
            {"verify_timeout_s": "-1"},
            {},
            "verify_timeout_s (--verify-timeout-s): must be a number > 0",
        ),
        ({"ca_file": "/nope.pem", "central": "https://c"}, {}, "ca_file (--ca-file): no such file"),
        ({"device_token": None}, {}, "device_token: required"),
    ],
)
def test_bad_values_name_the_setting(
    flags: dict[str, Any], env: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**BASE, **flags}, environ=env)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_bad_value_stops_run_with_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "gate_agent",
            "run",
            "--device-token",
            "t",
            "--pin",
            "1234",
            "--camera",
            "webcam:0",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown camera source 'webcam'" in lines[0], out.stderr


def test_missing_camera_and_central_are_retried_not_fatal(tmp_path: Path) -> None:
    config = load_config(
        {
            **BASE,
            "camera": f"dir:{tmp_path / 'not-yet'}",
            "data_dir": str(tmp_path / "d"),
            "central": f"http://127.0.0.1:{free_port()}",
        },
        environ={},
    )
    agent = GateAgent(config, indicator=FakeIndicator())
    agent.start()
    try:
        import time

        time.sleep(0.5)
        status = agent.status()
        assert status["online"] is False and status["pipeline"]["camera_ok"] is False
        assert "no such folder" in status["pipeline"]["camera_error"]
        (tmp_path / "not-yet").mkdir()
        deadline = time.monotonic() + 5
        while not agent.pipeline.camera_ok:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert agent.healthy()
    finally:
        agent.stop()


async def test_dashboard_login_session_and_endpoints(tmp_path: Path) -> None:
    config = load_config(
        {
            **BASE,
            "camera": "synthetic",
            "data_dir": str(tmp_path / "gate"),
            "central": f"http://127.0.0.1:{free_port()}",
        },
        environ={},
    )
    agent = GateAgent(config, indicator=FakeIndicator())
    agent.start()
    world = make_world(tmp_path / "w", FakeIndicator())  # mints a ticket for the scan list
    try:
        agent.manifest.apply(world.manifest.as_rows())
        seat = world.seat()
        agent.manifest.apply(world.manifest.as_rows())
        agent.decider.handle(world.code(seat), agent.clock.wall(), 0.0)
        async with TestClient(TestServer(make_dashboard(agent))) as client:
            assert "PIN" in await (await client.get("/")).text()
            assert (await client.get("/api/status")).status == 401
            assert (await client.post("/api/login", json={"pin": "0000"})).status == 401
            bad = await client.post("/api/login", data=b"not json")
            assert bad.status == 400 and "body" in (await bad.json())["message"]
            ok = await client.post("/api/login", json={"pin": "1234"})
            assert ok.status == 200
            cookie = ok.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            status = (await (await client.get("/api/status")).json())["data"]
            assert status["hall_id"] == "HALL-A" and status["backlog"] == 1
            assert set(status) >= {
                "gate_id",
                "hall_id",
                "online",
                "last_sync_at",
                "backlog",
                "counts",
            }
            scans = (await (await client.get("/api/scans?limit=5")).json())["data"]
            assert [(s["result"], s["mode"], s["seat"]["seat_id"]) for s in scans] == [
                ("SUCCESS", "offline", seat)
            ]
            bad_limit = await client.get("/api/scans?limit=zero")
            assert bad_limit.status == 400 and "limit" in (await bad_limit.json())["message"]
            async with client.ws_connect("/ws") as ws:
                first = await ws.receive_json(timeout=5)
                assert first["type"] == "status"
                other = world.seat()
                agent.manifest.apply(world.manifest.as_rows())
                agent.decider.handle(world.code(other), agent.clock.wall(), 0.0)
                pushed = await ws.receive_json(timeout=5)
                while pushed["type"] != "scan":
                    pushed = await ws.receive_json(timeout=5)
                assert pushed["data"]["seat"]["seat_id"] == other
            assert "Gate scans" in await (await client.get("/")).text()
    finally:
        agent.stop()
        world.outbox.close()
