"""systemd's notify protocol, without libsystemd: one datagram to $NOTIFY_SOCKET per message.

READY=1 once the agent is up (Type=notify), WATCHDOG=1 every half WatchdogSec while the pipeline
makes progress — a stalled capture or decode thread stops the pings and systemd restarts us."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one notify message; False when not run under systemd (no NOTIFY_SOCKET)."""
    path = (os.environ if environ is None else environ).get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace socket
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as exc:
        logger.warning("sd_notify failed", extra={"fields": {"error": str(exc)}})
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None, default: float = 5.0) -> float:
    """Half of WATCHDOG_USEC (systemd's advice), or default when no watchdog is set."""
    usec = (os.environ if environ is None else environ).get("WATCHDOG_USEC")
    try:
        return int(usec) / 2e6 if usec else default
    except ValueError:
        return default


class Watchdog:
    """Called from the main loop every interval: pings only when healthy() says so."""

    def __init__(self, healthy: Callable[[], bool], environ: Mapping[str, str] | None = None):
        self.healthy = healthy
        self.environ = environ
        self.pings = 0
        self.missed = 0

    def tick(self) -> bool:
        if self.healthy():
            if notify("WATCHDOG=1", self.environ):
                self.pings += 1
            return True
        self.missed += 1
        if self.missed == 1 or self.missed % 10 == 0:
            logger.error("pipeline stalled: withholding watchdog ping")
        return False
