"""Supervision inside the process, as Frigate's watchdog does it: each worker (capture, decode,
scanner input) runs in its own thread; a watchdog thread looks at them a few times a second and
starts a new thread for any that died — whatever the exception — and counts the restart. The
systemd watchdog stays the last resort for a thread that hangs (a thread cannot be killed)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# a worker that dies at once again and again must not spin the CPU
RESTART_BACKOFF_S = (0.05, 0.2, 0.5, 1.0)
# a worker that ran this long before dying starts its backoff from the first step again
STABLE_S = 10.0


@dataclass
class Worker:
    name: str
    target: Callable[[], None]
    # run before each restart (never before the first start): e.g. close a half-open camera
    on_restart: Callable[[], None] | None = None
    # true once the worker's owner stopped it: a thread that returned then stays down
    stopped: Callable[[], bool] | None = None
    restarts: int = 0
    last_error: str | None = None
    thread: threading.Thread | None = None
    started_at: float = 0.0
    failures_in_row: int = 0
    next_start: float = 0.0
    _error: BaseException | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, *, check_interval_s: float = 0.1) -> None:
        self.check_interval_s = check_interval_s
        self.workers: dict[str, Worker] = {}
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(
        self,
        name: str,
        target: Callable[[], None],
        *,
        on_restart: Callable[[], None] | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> None:
        """Supervise target from now on (started at once when the supervisor already runs)."""
        if name in self.workers:
            raise ValueError(f"worker {name!r} already supervised")
        worker = Worker(name, target, on_restart, stopped)
        self.workers[name] = worker
        if self._watchdog is not None:
            self._launch(worker)

    @property
    def running(self) -> bool:
        return self._watchdog is not None and not self._stop.is_set()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        for worker in self.workers.values():
            self._launch(worker)
        self._watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._watchdog.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Tells the watchdog to stop restarting; the workers end on their own stop flags."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout)
        for worker in self.workers.values():
            if worker.thread is not None:
                worker.thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def restarts(self) -> dict[str, int]:
        return {name: w.restarts for name, w in self.workers.items()}

    def stats(self) -> dict[str, dict[str, object]]:
        return {
            name: {
                "alive": w.thread is not None and w.thread.is_alive(),
                "restarts": w.restarts,
                "last_error": w.last_error,
            }
            for name, w in self.workers.items()
        }

    def _launch(self, worker: Worker) -> None:
        def run() -> None:
            try:
                worker.target()
            except BaseException as exc:  # any exception: the watchdog decides what follows
                worker._error = exc
                logger.exception("worker thread died", extra={"fields": {"worker": worker.name}})

        worker._error = None
        worker.started_at = time.monotonic()
        worker.thread = threading.Thread(target=run, name=worker.name, daemon=True)
        worker.thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            for worker in list(self.workers.values()):
                if worker.thread is None or worker.thread.is_alive() or self._stop.is_set():
                    continue
                try:
                    if worker.stopped is not None and worker.stopped():
                        continue
                    self._restart(worker)
                except Exception:  # the watchdog itself must outlive anything it watches
                    logger.exception(
                        "watchdog could not restart a worker",
                        extra={"fields": {"worker": worker.name}},
                    )

    def _restart(self, worker: Worker) -> None:
        now = time.monotonic()
        if worker.next_start == 0.0:
            # first look at the dead thread: note why it died and when it may come back
            error = worker._error
            worker.last_error = (
                f"{type(error).__name__}: {error}" if error is not None else "thread returned"
            )
            if now - worker.started_at > STABLE_S:
                worker.failures_in_row = 0
            delay = RESTART_BACKOFF_S[min(worker.failures_in_row, len(RESTART_BACKOFF_S) - 1)]
            worker.failures_in_row += 1
            worker.next_start = now + delay
        if now < worker.next_start:
            return
        worker.next_start = 0.0
        if worker.on_restart is not None:
            try:
                worker.on_restart()
            except Exception:
                logger.exception(
                    "worker restart hook failed", extra={"fields": {"worker": worker.name}}
                )
        with self._lock:
            worker.restarts += 1
        logger.error(
            "restarting worker thread",
            extra={
                "fields": {
                    "worker": worker.name,
                    "restarts": worker.restarts,
                    "error": worker.last_error,
                }
            },
        )
        self._launch(worker)
