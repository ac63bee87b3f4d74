"""The parts a chaos run breaks, each one private to the run: a PostgreSQL cluster (initdb + pg_ctl
in a temporary folder, on a free port), a RabbitMQ node (its own node name, ports and folders), a
TCP proxy that can cut a gate off from central, and service processes that can be SIGKILLed and
started again. Nothing here touches the machine's shared PostgreSQL or RabbitMQ."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from bench.chaos_lab.reaper import Leftovers

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin() -> Path:
    """The newest installed PostgreSQL's binaries (Debian keeps each version in its own folder)."""
    if os.environ.get("TR_PG_BIN"):
        return Path(os.environ["TR_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
RABBIT_BIN = Path(os.environ.get("TR_RABBIT_BIN", "/usr/lib/rabbitmq/bin"))


def missing_binaries() -> list[str]:
    """What a chaos run needs installed and cannot find (empty when it can run)."""
    missing = [
        str(p)
        for p in (PG_BIN / "initdb", PG_BIN / "pg_ctl", RABBIT_BIN / "rabbitmq-server")
        if not p.exists()
    ]
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser (initdb will not run as root)")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready in {timeout:.0f} s")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class PrivatePostgres:
    """A throwaway cluster with trust authentication on 127.0.0.1:<free port>.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user."""

    def __init__(self, root: Path) -> None:
        if os.geteuid() == 0:
            # the `postgres` user must reach the folder: a test's tmp_path (0700, root) will not
            # do, so the cluster lives in a folder of its own, removed by remove()
            root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
            shutil.chown(root, "postgres")
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.leftovers: Leftovers | None = None  # told of the cluster, to remove it if we die

    @property
    def url(self) -> str:
        """The database-URL prefix `serve` appends `_<service>` to."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/chaos"

    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check)

    def init(self) -> PrivatePostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.leftovers is not None:
            user = "postgres" if os.geteuid() == 0 else None
            self.leftovers.postgres(str(PG_BIN / "pg_ctl"), str(self.data), str(self.root), user)
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync")
        return self

    def start(self) -> None:
        # fsync off: the machine does not crash under the run, and a restart with -m immediate
        # still recovers from the WAL, which is what the fault exercises.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off"
        )
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def remove(self) -> None:
        """Stop the cluster and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRabbit:
    """A RabbitMQ node of its own (node name, AMQP and distribution ports, folders, cookie)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.node = f"chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.env = {
            **os.environ,
            "HOME": str(root / "home"),  # the Erlang cookie lives here, not in the shared node's
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(root / "rabbit.pid"),
        }
        self.leftovers: Leftovers | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def init(self) -> PrivateRabbit:
        if self.leftovers is not None:
            self.leftovers.rabbit(self.node)
        for sub in ("home", "mnesia", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.root / "enabled_plugins").write_text("[].\n")
        return self

    def _ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmq-server"), "-detached"],
            env=self.env,
            cwd=self.root,
            check=True,
            timeout=60,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = self._ctl("await_startup", "--timeout", "30", timeout=60)
            if done.returncode == 0:
                return
            time.sleep(1)  # the node may not be registered with epmd yet
        raise TimeoutError(f"RabbitMQ node {self.node} did not start: {done.stderr[-500:]}")

    def stop(self) -> None:
        self._ctl("stop")


class TcpProxy:
    """127.0.0.1:<port> forwarding to a target, with a switch: cut() stops every byte and every
    connection as an unplugged cable would (new connections hang unanswered), restore() ends the
    cut. It runs its own event loop in a thread so a busy caller never stalls the traffic."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.cut_now = False
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_now:
            self._held.add(writer)  # accepted by the kernel, never answered: a dead link
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not self.cut_now:
            data = await reader.read(65536)
            if not data or self.cut_now:
                break
            writer.write(data)
            await writer.drain()

    def _abort_all(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self.cut_now = True
        self._loop.call_soon_threadsafe(self._abort_all)

    def restore(self) -> None:
        def release() -> None:
            for w in list(self._held):
                w.transport.abort()
            self._held.clear()
            self.cut_now = False

        self._loop.call_soon_threadsafe(release)

    def close(self) -> None:
        async def stop() -> None:
            # abort every socket: each connection's task then ends on its own (cancelling them
            # would trip asyncio's stream callbacks)
            self._abort_all()
            for w in list(self._held):
                w.transport.abort()
            if self._server is not None:
                self._server.close()
            me = asyncio.current_task()
            others = [t for t in asyncio.all_tasks() if t is not me]
            if others:
                await asyncio.wait(others, timeout=2)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class Process:
    """One child process that can be SIGKILLed and started again with the same command."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, health_url: str | None) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        self.health_url = health_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.leftovers: Leftovers | None = None

    def start(self, *, wait: bool = True, timeout: float = 90) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TR_")}
        with open(self.log_path, "ab") as log:
            # a session (and process group) of its own: a fault kills it alone, and the reaper
            # kills its whole group if the run dies
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
            )
        if self.leftovers is not None:
            self.leftovers.group(self.proc.pid)
        if wait:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 90) -> None:
        if self.health_url is None:
            return

        url = self.health_url

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited early:\n{tail}")
            return http_ok(url)

        wait_for(up, timeout, self.name)
        # The machine is shared: another program may own the port we asked for (taken between
        # free_port() and our bind) and answer the health check while our process dies on that
        # bind. A process still alive a moment after its health answered is ours.
        time.sleep(0.5)
        up()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._gone()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._gone()

    def _gone(self) -> None:
        # its group id is free for reuse from now on: the reaper must not kill it any more
        if self.leftovers is not None and self.proc is not None and self.proc.poll() is not None:
            self.leftovers.group(self.proc.pid, alive=False)


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]
