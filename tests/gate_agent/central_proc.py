"""A real central (`python -m central serve`) in a subprocess, the admin CLI, and a buyer going
through the public API — the other end of the gate agent's end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
from central_process import free_port

from hardware.qr_render import render_qr_frame

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def wait_until(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Polls check() until it returns something truthy; raises AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value {last!r})")


@dataclass
class Central:
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path = self.data_dir.parent / f"central-{self.port}.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "central",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--otp-delivery",
                f"file:{self.data_dir.parent / 'otp.jsonl'}",
            ],
            cwd=REPO,
            stdout=log,
            stderr=log,
        )

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"central exited: {self.log_tail()}")
            try:
                # /api/events answers once the orchestrator and its services are up (GET /health
                # would do, but it also judges optional dependencies)
                return httpx.get(self.url + "/api/events", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=60, interval=0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path and self.log_path.exists() else ""

    def admin(self, *args: str) -> dict[str, Any]:
        out = subprocess.run(
            [PYTHON, "-m", "central", "admin", "--data-dir", str(self.data_dir), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.request(method, self.url + path, headers=headers, timeout=10, **kw)
        body = resp.json()
        assert resp.status_code < 300, (resp.status_code, body)
        return body["data"]


@dataclass
class Venue:
    """One event in a hall, a gate registered for it, a buyer with credits."""

    central: Central
    hall: str
    event_id: str
    seat_ids: list[str]
    gate_token: str
    gate_id: str
    buyer_token: str
    admin_token: str

    def dashboard(self) -> dict[str, Any]:
        return dict(
            self.central.call(
                "GET", f"/api/admin/events/{self.event_id}/dashboard", self.admin_token
            )
        )

    def add_gate(self, name: str) -> dict[str, Any]:
        return self.central.admin("add-gate", "--hall", self.hall, "--name", name)

    def buy(self, seat_id: str) -> None:
        order = self.central.call(
            "POST", "/api/reserve", self.buyer_token, json={"seat_id": seat_id}
        )
        self.central.call(
            "POST", "/api/pay", self.buyer_token, json={"order_id": order["order_id"]}
        )

    def qr(self, seat_id: str) -> str:
        return str(
            self.central.call("GET", f"/api/tickets/{seat_id}/qr", self.buyer_token)["qr_payload"]
        )

    def seat_status(self, seat_id: str) -> str:
        event = self.central.call("GET", f"/api/events/{self.event_id}")
        return next(s["status"] for s in event["seats"] if s["seat_id"] == seat_id)


def make_venue(
    central: Central, *, hall: str = "HALL-A", seats: int = 6, credits: int = 1000
) -> Venue:
    event = central.admin(
        "create-event",
        "--name",
        "Gate Test",
        "--hall",
        hall,
        "--rows",
        "1",
        "--seats-per-row",
        str(seats),
        "--price",
        "10",
    )
    gate = central.admin("add-gate", "--hall", hall, "--name", "North")
    email = f"b{uuid.uuid4().hex[:8]}@example.com"
    central.admin(
        "create-user", "--email", email, "--password", "pw-123456789", "--credits", str(credits)
    )
    login = central.call(
        "POST", "/api/auth/login", json={"email": email, "password": "pw-123456789"}
    )
    admin_email = f"a{uuid.uuid4().hex[:8]}@example.com"
    central.admin(
        "create-user", "--email", admin_email, "--password", "pw-123456789", "--role", "admin"
    )
    admin = central.call(
        "POST", "/api/auth/login", json={"email": admin_email, "password": "pw-123456789"}
    )
    return Venue(
        central,
        hall,
        event["event_id"],
        list(event["seat_ids"]),
        gate["device_token"],
        gate["gate_id"],
        login["access_token"],
        admin["access_token"],
    )


def drop_ticket(folder: Path, text: str, name: str | None = None) -> Path:
    """Render the code and put it in a dir: camera's folder atomically (write, then rename)."""
    name = name or f"t-{uuid.uuid4().hex[:8]}.png"
    tmp = folder / (name + ".part")
    ok, png = cv2.imencode(".png", render_qr_frame(text, 640, 480))
    assert ok
    tmp.write_bytes(png.tobytes())
    os.replace(tmp, folder / name)
    return folder / name
