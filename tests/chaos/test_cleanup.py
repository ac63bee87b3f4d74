"""A chaos run that dies leaves nothing behind: SIGKILLed in the middle, its private
PostgreSQL cluster is stopped and its folder removed, and every service process group it started
(children included) is gone. The run here is a child process holding a System with its cluster
up and one service-like process (a shell with a child of its own) — the parts a hard kill used to
leave running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.chaos_lab.faults import missing_binaries

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import json, sys, time
from pathlib import Path
from bench.chaos_lab.faults import Process
from bench.chaos_lab.system import System

system = System(Path(sys.argv[1]), remove_root=True)
system.pg.init().start()
service = system._tracked(
    Process("svc", ["sh", "-c", "sleep 300 & sleep 300"], Path(sys.argv[1]) / "svc.log", None)
)
service.start()
postmaster = int((system.pg.data / "postmaster.pid").read_text().split()[0])
print(json.dumps({"postmaster": postmaster, "service": service.proc.pid,
                  "pg_root": str(system.pg.root), "reaper": system.leftovers.reaper.pid}),
      flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is not running
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    return any(
        alive(int(p.name))
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _pgid(int(p.name)) == pgid
    )


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.skipif(bool(missing_binaries()), reason=f"needs {missing_binaries()}")
def test_a_killed_run_leaves_nothing_running(tmp_path: Path) -> None:
    run_root = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", RUN, str(run_root)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        assert alive(started["postmaster"]) and group_alive(started["service"])
        child.send_signal(signal.SIGKILL)  # nothing in the run can react to this one
        child.wait(timeout=10)
        deadline = time.monotonic() + 60  # a bound, not a wait for time to pass
        while time.monotonic() < deadline and alive(started["reaper"]):
            time.sleep(0.1)
        assert not alive(started["reaper"])
        assert not alive(started["postmaster"])
        assert not group_alive(started["service"])  # the shell and its child
        assert not Path(started["pg_root"]).exists()
        assert not run_root.exists()
    finally:
        if child.poll() is None:
            child.kill()
