"""A real central (`python -m central serve`) in a subprocess, the admin CLI, and a buyer going
through the public API — the other end of the gate agent's end-to-end tests."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import cv2

from central.local_processes import (  # noqa: F401 - Venue, make_venue re-exported for the tests
    PYTHON,
    ROOT,
    CentralProcess,
    Venue,
    free_port,
    make_venue,
)
from hardware.qr_render import render_qr_frame

REPO = ROOT


def wait_until(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Polls check() until it returns something truthy; raises AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value {last!r})")


class Central(CentralProcess):
    """Central for the gate tests: OTP codes go to a file beside the data directory, and a
    stopped central forgets its process (`proc is None`), so a test can restart it on its port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        otp = f"file:{data_dir.parent / 'otp.jsonl'}"
        super().__init__(data_dir, port=port, args=["--otp-delivery", otp])

    def stop(self) -> None:
        super().stop()
        self.proc = None


def drop_ticket(folder: Path, text: str, name: str | None = None) -> Path:
    """Render the code and put it in a dir: camera's folder atomically (write, then rename)."""
    name = name or f"t-{uuid.uuid4().hex[:8]}.png"
    tmp = folder / (name + ".part")
    ok, png = cv2.imencode(".png", render_qr_frame(text, 640, 480))
    assert ok
    tmp.write_bytes(png.tobytes())
    os.replace(tmp, folder / name)
    return folder / name
