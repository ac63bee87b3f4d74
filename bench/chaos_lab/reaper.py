"""What a chaos run leaves behind if it dies, removed when it dies — however it dies.

A chaos run starts processes that outlive it by design: PostgreSQL (pg_ctl daemonises the
postmaster), a detached RabbitMQ node, and each service and gate in a session of its own (so a
fault can SIGKILL one without touching the run). A SIGKILLed or crashed run cannot clean up after
itself, and atexit or signal handlers never run then. So the run starts this reaper first: a
separate process (its own session) holding the read end of a pipe whose write end only the run
holds. When the run ends — cleanly or not — the kernel closes that end, the reaper reads EOF,
and, unless the run said it had cleaned up, it removes everything the run recorded in its state
file: every live process group, the PostgreSQL cluster (stopped, then its folder deleted), the
RabbitMQ node (its processes found by the node's own unique name in their environment) and the run's folders.

Run as `python -m bench.chaos_lab.reaper STATE_FILE` (stdin: the pipe); `Leftovers` is the run's
side.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any


class Leftovers:
    """The run's record of what would be left behind, and its reaper."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.state: dict[str, Any] = {"groups": [], "postgres": None, "rabbit": None, "dirs": []}
        # parts start from several threads at once (the broker while the database comes up)
        self._lock = threading.RLock()
        self._save()
        read_end, self._write_end = os.pipe()
        self.reaper = subprocess.Popen(
            [sys.executable, "-m", "bench.chaos_lab.reaper", str(state_file)],
            cwd=Path(__file__).resolve().parents[2],
            stdin=read_end,
            start_new_session=True,  # neither the run's process group nor its terminal's signals
        )
        os.close(read_end)
        # no child started later may inherit the write end: it would keep the pipe open
        os.set_inheritable(self._write_end, False)

    def _save(self, **change: Any) -> None:
        """Apply the change and write the whole state (atomically: the reaper may read it at
        any instant)."""
        with self._lock:
            self.state.update(change)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            os.replace(tmp, self.state_file)

    def group(self, pgid: int, alive: bool = True) -> None:
        """A process group (a child started with start_new_session) to kill, or no longer."""
        with self._lock:  # read and write as one: two starts at once must both be kept
            groups = [g for g in self.state["groups"] if g != pgid]
            self._save(groups=[*groups, pgid] if alive else groups)

    def postgres(self, pg_ctl: str, data: str, root: str, as_user: str | None) -> None:
        self._save(postgres={"pg_ctl": pg_ctl, "data": data, "root": root, "user": as_user})

    def rabbit(self, node: str) -> None:
        self._save(rabbit={"node": node})

    def folder(self, path: Path) -> None:
        with self._lock:
            self._save(dirs=[*self.state["dirs"], str(path)])

    def done(self) -> None:
        """The run cleaned up after itself: the reaper leaves at once — unless a process group
        is still recorded as running, which it then kills before it leaves."""
        with self._lock:
            self._save(clean=not self.state["groups"])
        os.close(self._write_end)
        self.reaper.wait(timeout=30)


# ----- the reaper's side -----


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, signal.SIGKILL)


def _pids_of_node(node: str) -> list[int]:
    """The processes of one RabbitMQ node: its Erlang VM and helpers carry the node's name in
    their environment (RABBITMQ_NODENAME), and the name is the run's own
    (chaos-<random>@localhost), so nothing else can match."""
    entry_wanted = f"RABBITMQ_NODENAME={node}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry_wanted in environ:
            found.append(int(entry.name))
    return found


def _stop_rabbit(node: str) -> None:
    for pid in _pids_of_node(node):
        with suppress(ProcessLookupError, PermissionError):  # already gone
            os.kill(pid, signal.SIGKILL)


def _stop_postgres(pg: dict[str, Any]) -> None:
    cmd = [pg["pg_ctl"], "-D", pg["data"], "-m", "immediate", "-w", "stop"]
    if pg.get("user"):
        cmd = ["runuser", "-u", pg["user"], "--", *cmd]
    subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    shutil.rmtree(pg["root"], ignore_errors=True)


def reap(state: dict[str, Any]) -> None:
    for pgid in state.get("groups", []):
        _kill_group(pgid)
    if state.get("rabbit"):
        _stop_rabbit(state["rabbit"]["node"])
    if state.get("postgres"):
        _stop_postgres(state["postgres"])
    for path in state.get("dirs", []):
        shutil.rmtree(path, ignore_errors=True)


def main(state_file: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's Ctrl-C is the run's, not ours
    while sys.stdin.buffer.read(65536):
        pass  # nothing is ever written: EOF is the run's end
    try:
        state = json.loads(Path(state_file).read_text())
    except (OSError, ValueError):
        return 0
    if not state.get("clean"):
        reap(state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
