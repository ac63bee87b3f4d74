"""Central as child processes on this machine (`python -m central serve` / `admin`), and a venue set
up on it through the admin CLI and the public API: what the tests, the benches and the demo share.

Needs httpx (the `gate` and `dev` extras). Children run from the checkout this module belongs to,
so a bench run from a clone drives that clone's code."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_admin(data_dir: Path, *args: str, database_url: str | None = None) -> dict[str, Any]:
    """`python -m central admin --data-dir D …`: the JSON object it prints."""
    cmd = [PYTHON, "-m", "central", "admin", "--data-dir", str(data_dir)]
    if database_url:
        cmd += ["--database-url", database_url]
    done = subprocess.run(
        cmd + list(args), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"admin {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return dict(json.loads(done.stdout))


class CentralProcess:
    """`python -m central serve` in a subprocess, its output in a log file."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.database_url = database_url
        self.env = env or {}
        self.args = args or []
        self.log_path = log_path or data_dir.parent / f"central-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, *, env: dict[str, str] | None = None, wait: bool = True) -> CentralProcess:
        cmd = [
            PYTHON,
            "-m",
            "central",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            *self.args,
        ]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        # A fault armed in the caller's own environment must not leak into the child.
        full_env = {k: v for k, v in os.environ.items() if k != "TR_FAULT"}
        full_env.update(self.env)
        full_env.update(env or {})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=log)
        log.close()
        if wait:
            self.wait_healthy()
        return self

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"central exited early; log:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"central not healthy in {timeout} s; log:\n{self.log_tail()}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def admin(self, *args: str) -> dict[str, Any]:
        return run_admin(self.data_dir, *args, database_url=self.database_url)

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        """One public API call that must succeed: its `data`."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.request(method, self.url + path, headers=headers, timeout=10, **kw)
        body = resp.json()
        if resp.status_code >= 300:
            raise AssertionError(f"{method} {path}: {resp.status_code} {body}")
        return body["data"]


class ScaledOutCentral:
    """Every central service in its own process (`serve --service NAME`), the orchestrator
    configured with their addresses — the scaled-out shape, on one machine."""

    SERVICES = ("inventory", "users", "orders", "events")

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        args: list[str] | None = None,
        orchestrator_args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in (*self.SERVICES, "orchestrator")}
        self.health_port = free_port()
        base = [*(args or [])]
        if database_url:
            base += ["--database-url", database_url]
        service_args = {
            "inventory": ["--health-port", str(self.health_port)],
            "orchestrator": [
                "--users-url",
                f"http://127.0.0.1:{self.ports['users']}",
                "--orders-url",
                f"http://127.0.0.1:{self.ports['orders']}",
                "--events-url",
                f"http://127.0.0.1:{self.ports['events']}",
                "--inventory-addr",
                f"127.0.0.1:{self.ports['inventory']}",
                *(orchestrator_args or []),
            ],
        }
        self.processes = {
            name: CentralProcess(
                data_dir,
                port=self.ports[name],
                args=["--service", name, *base, *service_args.get(name, [])],
                log_path=data_dir.parent / f"{name}.log",
            )
            for name in (*self.SERVICES, "orchestrator")
        }
        self.url = self.processes["orchestrator"].url

    def start(self) -> ScaledOutCentral:
        for name in self.SERVICES:
            self.processes[name].start(wait=False)
        for name in ("users", "orders", "events"):
            self.processes[name].wait_healthy()
        self.processes["orchestrator"].start()  # healthy only once inventory answers too
        return self

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.stop()


@dataclass
class Venue:
    """One event in a hall, a gate registered for it, a buyer with credits, an admin."""

    central: CentralProcess
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
        return str(next(s["status"] for s in event["seats"] if s["seat_id"] == seat_id))


def make_venue(
    central: CentralProcess, *, hall: str = "HALL-A", seats: int = 6, credits: int = 1000
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
