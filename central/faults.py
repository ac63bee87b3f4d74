"""Named fault points compiled into the product, so tests can stop it exactly at a step boundary.

`TR_FAULT=purchase.after_deduct:crash` (comma-separated for several) kills the process with SIGKILL
when it reaches that point — no cleanup, no flush, as a power cut would. `:error` raises FaultInjected
there instead, which the saga runner treats like any failed step. Tests in one process arm points with
arm()/disarm(). With nothing armed a fault point costs one dict lookup.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

_armed: dict[str, str] = {}
# how many more hits an armed point fires for (absent: every hit); a test that kills a worker
# thread once needs the restarted thread to run clean
_remaining: dict[str, int] = {}


class FaultInjected(Exception):
    """Raised at an armed `:error` fault point."""


def _load_env() -> None:
    for item in os.environ.get("TR_FAULT", "").split(","):
        name, _, action = item.strip().partition(":")
        if name:
            _armed[name] = action or "crash"


def arm(name: str, action: str = "error", *, times: int | None = None) -> None:
    if action not in ("error", "crash"):
        raise ValueError(f"fault action must be error or crash, not {action!r}")
    _armed[name] = action
    if times is None:
        _remaining.pop(name, None)
    else:
        _remaining[name] = times


def disarm(name: str | None = None) -> None:
    if name is None:
        _armed.clear()
        _remaining.clear()
    else:
        _armed.pop(name, None)
        _remaining.pop(name, None)


def fault_point(name: str) -> None:
    action = _armed.get(name)
    if action is None:
        return
    left = _remaining.get(name)
    if left is not None:
        if left <= 1:
            disarm(name)
        else:
            _remaining[name] = left - 1
    if action == "crash":
        log.warning("fault point %s: crashing", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    raise FaultInjected(name)


_load_env()
