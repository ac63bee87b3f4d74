"""`python -m central …` as a real subprocess, for tests that kill and restart it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_admin(data_dir: Path, *args: str, database_url: str | None = None) -> dict[str, Any]:
    import json

    cmd = [sys.executable, "-m", "central", "admin", "--data-dir", str(data_dir)]
    if database_url:
        cmd += ["--database-url", database_url]
    done = subprocess.run(
        cmd + list(args), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class CentralProcess:
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
            sys.executable,
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
        # A fault armed in the test's own environment must not leak into the child.
        full_env = {k: v for k, v in os.environ.items() if k != "TR_FAULT"}
        full_env.update(self.env)
        full_env.update(env or {})
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=log)
        log.close()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"central exited early; log:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(
            f"central not healthy in {timeout} s; log:\n{self.log_path.read_text()[-3000:]}"
        )

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
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


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


def api(
    url: str, method: str, path: str, token: str | None = None, body: object = None
) -> httpx.Response:
    """One public API call, as a client outside the process would make it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url + path, json=body, headers=headers, timeout=30)


async def query(prefix: str, service: str, sql: str) -> list[dict[str, Any]]:
    """Read a service's PostgreSQL database directly (what the test checks, not how it acts)."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{prefix}_{service}")
    try:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(sa.text(sql))]
    finally:
        await engine.dispose()


async def sagas_settled(prefix: str) -> bool:
    """No saga is left running or compensating."""
    rows = await query(prefix, "orchestrator", "SELECT status FROM sagas")
    return all(r["status"] in ("COMPLETED", "FAILED") for r in rows)
