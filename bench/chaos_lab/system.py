"""The whole system scaled out on private infrastructure: one process per central service
(`python -m central serve --service NAME`) on a private PostgreSQL and RabbitMQ, real gate agent
processes (`python -m gate_agent run`, dir: camera) — some straight to central, some through a
TCP proxy that can be cut — and the operator setup made with the admin CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.chaos_lab.faults import (
    ROOT,
    PrivatePostgres,
    PrivateRabbit,
    Process,
    TcpProxy,
    free_port,
    http_ok,
    wait_for,
)
from bench.chaos_lab.reaper import Leftovers

SERVICES = ("inventory", "users", "orders", "events")
PASSWORD = "chaos password 1"
PIN = "2468"
HALL = "HALL-A"


@dataclass
class Gate:
    name: str
    gate_id: str
    device_token: str
    process: Process
    data_dir: Path
    camera_dir: Path
    dashboard_port: int
    proxy: TcpProxy | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "gate.sqlite3"


@dataclass
class Buyer:
    user_id: str
    email: str
    token: str


@dataclass
class System:
    root: Path
    hold_ttl: int = 8
    pg: PrivatePostgres = field(init=False)
    rabbit: PrivateRabbit = field(init=False)
    procs: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)
    buyers: list[Buyer] = field(default_factory=list)
    granted: int = 0  # every credit the operator gave: the conservation check's total
    event: dict[str, Any] = field(default_factory=dict)
    admin_token: str = ""
    admin_email: str = ""
    remove_root: bool = False  # a throwaway folder: removed too if the run dies

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "central"
        self.logs = self.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.otp_file = self.root / "otp.jsonl"
        # first of all: whatever starts from here on is removed if this process dies, even by
        # SIGKILL (see reaper.py)
        self.leftovers = Leftovers(self.root / "leftovers.json")
        if self.remove_root:
            self.leftovers.folder(self.root)
        self.pg = PrivatePostgres(self.root / "pg")
        self.pg.leftovers = self.leftovers
        self.rabbit = PrivateRabbit(self.root / "rabbit")
        self.rabbit.leftovers = self.leftovers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['orchestrator']}"

    # ----- central -----

    def _common(self) -> list[str]:
        return [
            "--data-dir",
            str(self.data_dir),
            "--database-url",
            self.pg.url,
            "--otp-delivery",
            f"file:{self.otp_file}",
            "--access-ttl",
            "7200",
            "--log-level",
            "INFO",
        ]

    def _service_process(self, name: str) -> Process:
        port = self.ports[name]
        args = ["--service", name, "--port", str(port), *self._common()]
        health = f"http://127.0.0.1:{port}/health"
        if name == "inventory":
            args += ["--health-port", str(self.ports["inventory-health"])]
            health = f"http://127.0.0.1:{self.ports['inventory-health']}/health"
        if name == "orchestrator":
            base = "http://127.0.0.1:"
            args += [
                "--users-url",
                f"{base}{self.ports['users']}",
                "--orders-url",
                f"{base}{self.ports['orders']}",
                "--events-url",
                f"{base}{self.ports['events']}",
                "--inventory-addr",
                f"127.0.0.1:{self.ports['inventory']}",
                "--amqp-url",
                self.rabbit.url,
                "--hold-ttl",
                str(self.hold_ttl),
                "--transfer-ttl",
                "30",
                "--saga-lease",
                "10",
                # a handful of buyers play a crowd here: the per-user abuse limits (30 reserves a
                # minute) would throttle the load and hide how fast purchases recover
                "--reserve-rate-limit",
                "100000",
            ]
        if name == "users":
            # six buyers pass tickets around all run: 8 codes a user per 15 minutes (the abuse
            # limit) would stop transfers after the first minute
            args += ["--otp-send-limit", "100000"]
        cmd = [sys.executable, "-m", "central", "serve", *args]
        return self._tracked(Process(name, cmd, self.logs / f"{name}.log", health))

    def _tracked(self, process: Process) -> Process:
        process.leftovers = self.leftovers
        return process

    def admin(self, *args: str) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "central", "admin", *self._common()[:4], *args]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"admin {args[0]} failed: {done.stderr[-1500:]}")
        return dict(json.loads(done.stdout))

    async def start(self) -> None:
        """The broker boots (the slowest part) while PostgreSQL, the admin account and the
        atomic services come up; the orchestrator starts once both are there."""
        for name in (*SERVICES, "orchestrator", "inventory-health"):
            self.ports[name] = free_port()

        def database_side() -> None:
            self.pg.init().start()
            self.create_admin()
            for name in SERVICES:
                self.procs[name] = self._service_process(name)
                self.procs[name].start(wait=False)
            for name in SERVICES:
                self._healthy_or_new_port(name)

        # both threads finish before a failure of one is raised: otherwise the other would go on
        # starting services after stop() had looked for them
        for outcome in await asyncio.gather(
            asyncio.to_thread(lambda: self.rabbit.init().start()),
            asyncio.to_thread(database_side),
            return_exceptions=True,
        ):
            if isinstance(outcome, BaseException):
                raise outcome
        # generous: a fresh broker may take a while to accept its first quorum queue declarations
        self.procs["orchestrator"] = self._service_process("orchestrator")
        self.procs["orchestrator"].start(wait=False)
        await asyncio.to_thread(self._healthy_or_new_port, "orchestrator", 180)

    def _healthy_or_new_port(self, name: str, timeout: float = 90) -> None:
        """Wait for the service; if another program took its port between free_port() and the
        bind (the machine is shared), start it again on a new port (the others are told after)."""
        for attempt in range(3):
            try:
                self.procs[name].wait_healthy(timeout)
                return
            except RuntimeError as exc:
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
            self.ports[name] = free_port()
            if name == "inventory":
                self.ports["inventory-health"] = free_port()
            self.procs[name] = self._service_process(name)
            self.procs[name].start(wait=False)

    # ----- the venue -----

    def create_admin(self) -> None:
        """The one operator account, through the admin CLI (everything else goes through the
        public API as an organiser would)."""
        self.admin_email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        self.admin(
            "create-user", "--email", self.admin_email, "--password", PASSWORD, "--role", "admin"
        )

    async def setup_venue(
        self, *, buyers: int, rows: int, seats_per_row: int, credits: int
    ) -> None:
        """An event with doors open now and registered buyers with credits, all through the
        public API (registration with its OTP, then an admin grant)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:

            async def call(method: str, path: str, token: str = "", **kw: Any) -> dict[str, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                r = await client.request(method, path, headers=headers, **kw)
                if r.status_code >= 300:
                    raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
                return dict(r.json()["data"])

            login = {"email": self.admin_email, "password": PASSWORD}
            self.admin_token = (await call("POST", "/api/auth/login", json=login))["access_token"]
            self.event = await call(
                "POST",
                "/api/admin/events",
                self.admin_token,
                json={
                    "name": "Chaos Night",
                    "venue": {"name": "Chaos Hall"},
                    "hall_id": HALL,
                    "event_date": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                    "pricing": {"STD": 10},
                    "seats": {"rows": rows, "seats_per_row": seats_per_row},
                },
            )

            async def buyer(i: int) -> Buyer:
                email = f"b{i}-{uuid.uuid4().hex[:6]}@example.com"
                user = await call(
                    "POST",
                    "/api/auth/register",
                    json={"email": email, "password": PASSWORD},
                )
                code = None
                for _ in range(100):
                    code = await asyncio.to_thread(
                        latest_code, self.otp_file, user["user_id"], user["user_id"]
                    )
                    if code:
                        break
                    await asyncio.sleep(0.1)
                verified = await call(
                    "POST",
                    "/api/auth/verify-registration",
                    json={"user_id": user["user_id"], "otp_code": code},
                )
                await call(
                    "POST",
                    "/api/admin/credits/grant",
                    self.admin_token,
                    json={"user_id": user["user_id"], "amount": credits},
                )
                return Buyer(user["user_id"], email, verified["access_token"])

            self.buyers = list(await asyncio.gather(*(buyer(i) for i in range(buyers))))
            self.granted += credits * buyers

    def register_gate(self, name: str) -> dict[str, Any]:
        r = httpx.post(
            self.url + "/api/admin/gates",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            json={"hall_id": HALL, "name": name},
            timeout=60,
        )
        r.raise_for_status()
        return dict(r.json()["data"])

    # ----- gates -----

    def add_gate(self, name: str, *, behind_proxy: bool) -> Gate:
        registered = self.register_gate(name)
        proxy = None
        central = self.url
        if behind_proxy:
            proxy = TcpProxy("127.0.0.1", self.ports["orchestrator"]).start()
            central = proxy.url
        data_dir = self.root / f"gate-{name}"
        camera = self.root / f"gate-{name}-camera"
        camera.mkdir(parents=True)
        for attempt in range(3):
            port = free_port()
            gate = self._gate_process(name, registered, central, data_dir, camera, port, proxy)
            try:
                gate.process.start()
                break
            except RuntimeError as exc:
                # another program took the dashboard port first (the machine is shared)
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
        self.gates.append(gate)
        return gate

    def _gate_process(
        self,
        name: str,
        registered: dict[str, Any],
        central: str,
        data_dir: Path,
        camera: Path,
        port: int,
        proxy: TcpProxy | None,
    ) -> Gate:
        cmd = [
            sys.executable,
            "-m",
            "gate_agent",
            "run",
            "--central",
            central,
            f"--device-token={registered['device_token']}",
            "--camera",
            f"dir:{camera}",
            "--data-dir",
            str(data_dir),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(port),
            "--pin",
            PIN,
            "--dedup-s",
            "0.5",
            "--backoff-max-s",
            "1",
            "--sync-interval-s",
            "2",
            "--upload-interval-s",
            "1",
            "--verify-timeout-s",
            "1.5",
        ]
        process = self._tracked(
            Process(
                f"gate-{name}", cmd, self.logs / f"gate-{name}.log", f"http://127.0.0.1:{port}/"
            )
        )
        return Gate(
            name,
            registered["gate_id"],
            registered["device_token"],
            process,
            data_dir,
            camera,
            port,
            proxy,
        )

    def gate_status(self, gate: Gate) -> dict[str, Any]:
        with httpx.Client(base_url=f"http://127.0.0.1:{gate.dashboard_port}", timeout=5) as c:
            c.post("/api/login", json={"pin": PIN}).raise_for_status()
            return dict(c.get("/api/status").json()["data"])

    def central_healthy(self) -> bool:
        return http_ok(self.url + "/health")

    def wait_central(self, timeout: float = 90) -> None:
        wait_for(self.central_healthy, timeout, "central")

    def stop(self) -> None:
        """Everything stopped and removed; if a step fails, the reaper finishes the job when
        this process ends."""
        for gate in self.gates:
            gate.process.stop()
            if gate.proxy is not None:
                gate.proxy.close()
        for name in ("orchestrator", *SERVICES):
            if name in self.procs:
                self.procs[name].stop()
        self.rabbit.stop()
        self.pg.remove()
        self.leftovers.done()


def latest_code(path: Path, user_id: str, reference_id: str) -> str | None:
    """The newest one-time code the users service delivered (to its file) for this reference."""
    if not path.exists():
        return None
    for line in reversed(path.read_text().splitlines()):
        item = json.loads(line)
        if item.get("user_id") == user_id and item.get("reference_id") == reference_id:
            return str(item["code"])
    return None
