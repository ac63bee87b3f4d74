"""The gate agent as a real process (`python -m gate_agent run`) with a dir: camera, and a client
for its dashboard API."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.gate_agent.central_proc import PYTHON, REPO, free_port, wait_until

PIN = "2468"


@dataclass
class GateProc:
    central_url: str
    device_token: str
    root: Path
    name: str = "gate"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    camera_dir: Path | None = None
    _http: httpx.Client | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / f"{self.name}-data"

    def start(self, *extra: str) -> None:
        # a fresh folder per start: a restarted dir: camera would show the old images again
        n = len(list(self.root.glob(f"{self.name}-cam*")))
        self.camera_dir = self.root / f"{self.name}-cam{n}"
        self.camera_dir.mkdir(parents=True)
        log = (self.root / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gate_agent",
                "run",
                "--central",
                self.central_url,
                f"--device-token={self.device_token}",
                "--camera",
                f"dir:{self.camera_dir}",
                "--data-dir",
                str(self.data_dir),
                "--dashboard-host",
                "127.0.0.1",
                "--dashboard-port",
                str(self.port),
                "--pin",
                PIN,
                "--dedup-s",
                "0.5",
                "--backoff-max-s",
                "1",
                *extra,
            ],
            cwd=REPO,
            stdout=log,
            stderr=log,
        )
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

        def logged_in() -> bool:
            assert self.proc is not None and self._http is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"gate exited: {self.log_tail()}")
            try:
                return self._http.post("/api/login", json={"pin": PIN}).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(logged_in, timeout=30, interval=0.1)

    def log_tail(self) -> str:
        path = self.root / f"{self.name}.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def status(self) -> dict[str, Any]:
        assert self._http is not None
        return dict(self._http.get("/api/status").json()["data"])

    def scans(self) -> list[dict[str, Any]]:
        assert self._http is not None
        return list(self._http.get("/api/scans", params={"limit": 100}).json()["data"])

    def wait_scans(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            scans = self.scans()
            return scans if len(scans) >= count else None

        return list(wait_until(enough, timeout))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._http is not None:
            self._http.close()
