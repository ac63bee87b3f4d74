"""`serve --workers N`: N orchestrator processes answering on one public port.

Each worker binds the port itself with SO_REUSEPORT and the kernel spreads new connections over
them, so no process proxies another's traffic. The supervisor (the `serve` process) first binds the
port without listening — that fixes the port when `--port 0` asks for a free one, and keeps it
ours while workers come and go — then starts the workers, waits until each answers, and watches
them: a worker that dies stops the whole service with a non-zero exit (a service manager restarts
it whole), and Ctrl-C / SIGTERM stops every worker before the supervisor's own services.

Workers are fresh interpreters (spawn, not fork: the supervisor already runs an event loop and
threads). On Linux each asks the kernel to kill it if the supervisor dies, so a SIGKILLed `serve`
leaves no orphan answering on its port.

Background jobs with N workers: the saga recovery and hold-deadline sweep run in worker 0 only
(each pass is lease-guarded and safe in every replica, but N pollers would only compete for the
same rows — on SQLite for its one write lock); the entry-log outbox drain and the RabbitMQ
hold-expiry consumer run in every worker (the drain is idempotent by log id, the consumers share
one queue).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from contextlib import suppress
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from central.config import Settings

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
PR_SET_PDEATHSIG = 1


class WorkerDied(Exception):
    """An orchestrator worker exited on its own: the service is no longer whole."""


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: it picks the port for `--port 0` and keeps it
    ours; connections go only to the workers' listening sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_worker(settings: Settings, addresses: Any, ready: MpEvent) -> None:
    """A worker process's entry point: one orchestrator on the shared port until SIGTERM/SIGINT."""
    _die_with_parent()
    from central.logs import setup_logging
    from central.serve import run_event_loop, serve_orchestrator_worker

    setup_logging(settings.log_level)
    sys.setswitchinterval(0.0005)
    run_event_loop(lambda: serve_orchestrator_worker(settings, addresses, ready))


class WorkerPool:
    def __init__(self, settings: Settings, addresses: Any, count: int) -> None:
        self.settings = settings
        self.addresses = addresses
        self.count = count
        self.port = 0
        self._socket: socket.socket | None = None
        self._processes: list[BaseProcess] = []

    async def start(self) -> int:
        """Start every worker and wait until each listens; answer the port."""
        from central.orchestrator.runtime import prepare

        await prepare(self.settings)
        self._socket = reserve_port(self.settings.host, self.settings.public_port())
        self.port = int(self._socket.getsockname()[1])
        ctx = multiprocessing.get_context("spawn")
        events: list[MpEvent] = []
        for index in range(self.count):
            worker_settings = dataclasses.replace(
                self.settings, port=self.port, worker_index=index, workers=1
            )
            ready = ctx.Event()
            process = ctx.Process(
                target=run_worker,
                args=(worker_settings, self.addresses, ready),
                name=f"orchestrator-{index}",
            )
            process.start()
            self._processes.append(process)
            events.append(ready)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(e.is_set() for e in events):
            self._raise_if_died()
            if time.monotonic() > deadline:
                raise WorkerDied(f"orchestrator workers not ready in {READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)
        log.info("workers ready", extra={"fields": {"workers": self.count, "port": self.port}})
        return self.port

    def _raise_if_died(self) -> None:
        for process in self._processes:
            if process.exitcode is not None:
                raise WorkerDied(f"{process.name} exited with {process.exitcode}")

    async def watch(self, stop: asyncio.Event) -> None:
        """Until stop is set; raises WorkerDied when a worker exits on its own."""
        while not stop.is_set():
            self._raise_if_died()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    async def close(self) -> None:
        for process in self._processes:
            if process.exitcode is None and process.pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        # join() blocks: in a thread, so the supervisor's own services keep answering meanwhile
        for process in self._processes:
            await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        for process in self._processes:
            if process.exitcode is None:
                log.warning("%s did not stop in time: killed", process.name)
                process.kill()
                process.join(5)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        _stop_resource_tracker()


def _stop_resource_tracker() -> None:
    """Spawning started multiprocessing's resource tracker, a process that otherwise ends only
    after `serve` has exited: it is then nobody's child, and where PID 1 does not reap (a
    container) it stays behind as a zombie in serve's process group. Stop and reap it here, once
    the workers (and the semaphores behind their ready events) are gone."""
    from multiprocessing import resource_tracker

    with suppress(Exception):
        resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]
