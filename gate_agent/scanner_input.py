"""A barcode scanner as a gate input: each code it types goes to the decider — the same verdict
path as a camera scan (outbox first, then light and relay). No de-duplication here: a scanner
sends a code once per trigger pull, so a second pull is a second showing (a duplicate is refused
by the decider as DUPLICATE, like at a camera)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hardware.scanners import CodeReader, ScannerError

logger = logging.getLogger(__name__)

# (text, captured wall time, captured monotonic, how it arrived)
Handler = Callable[[str, float, float, str], Any]


class ScannerInput:
    def __init__(
        self,
        reader: CodeReader,
        handler: Handler,
        *,
        retry_s: float = 2.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.reader, self.handler = reader, handler
        self.retry_s, self.wall = retry_s, wall
        self.ok = False
        self.error: str | None = None
        self.codes = 0
        self.beat = time.monotonic()
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        return self.reader.name

    def stop(self) -> None:
        """The worker closes the device itself within a read timeout (never from here, while
        it may be waiting on it)."""
        self._stop.set()

    def is_stopped(self) -> bool:
        return self._stop.is_set()

    def stats(self) -> dict[str, Any]:
        return {"scanner": self.name, "ok": self.ok, "error": self.error, "codes": self.codes}

    def run(self) -> None:
        """The worker loop (supervised: any exception ends it and the supervisor restarts it)."""
        try:
            self._loop()
        finally:
            if self._stop.is_set():
                self.reader.close()
                self.ok = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.beat = time.monotonic()
            if not self.ok:
                try:
                    self.reader.open()
                except ScannerError as exc:
                    if self.error != str(exc):
                        logger.error(
                            "scanner unavailable; retrying", extra={"fields": {"error": str(exc)}}
                        )
                    self.error = str(exc)
                    self._stop.wait(self.retry_s)
                    continue
                self.ok, self.error = True, None
            if self.reader.finished:
                self._stop.wait(0.5)
                continue
            try:
                code = self.reader.read_code(0.25)
            except ScannerError as exc:
                logger.error("scanner lost; reopening", extra={"fields": {"error": str(exc)}})
                self.reader.close()
                self.ok, self.error = False, str(exc)
                continue
            except Exception:
                self.reader.close()
                self.ok = False
                raise
            if code is None:
                continue
            self.codes += 1
            try:
                self.handler(code, self.wall(), time.monotonic(), "scanner")
            except Exception:
                # the outbox or an indicator failed; the next code must still be judged
                logger.exception("deciding a scanned code failed")
