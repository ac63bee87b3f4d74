"""Camera to verdict (ARCHITECTURE §7): a capture thread fills a one-frame slot (a newer frame
replaces an unread one, which is counted as dropped — never queued, so the decoder always works on
what the camera sees now), a worker thread decodes it, drops codes still held in view, and hands
fresh ones to the decider."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from central.faults import fault_point
from gate_agent.supervisor import Supervisor
from hardware.decode import Decoder
from hardware.frames import CameraError, FrameSource
from hardware.second_pass import PassStats

logger = logging.getLogger(__name__)

Handler = Callable[[str, float, float], Any]  # (text, captured wall time, captured monotonic)


@dataclass
class _Slot:
    frame: np.ndarray
    wall: float
    mono: float


@dataclass(frozen=True)
class LastFrame:
    """The frame the decoder last looked at and the corners of the codes it found there. Only a
    reference: the dashboard's preview encodes it (when someone watches) off the decode thread."""

    frame: np.ndarray
    corners: tuple[tuple[tuple[int, int], ...], ...]
    seq: int


class FrameSlot:
    """The newest frame only. put() never blocks the camera; take() waits for a frame."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: _Slot | None = None
        self.dropped = 0
        self.captured = 0

    def put(self, frame: np.ndarray, wall: float, mono: float) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = _Slot(frame, wall, mono)
            self.captured += 1
            self._cond.notify()

    def take(self, timeout: float) -> _Slot | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


class Deduper:
    """A code seen within gap_s of its last sighting is the same code still held in view: it was
    judged once already. Shown again after gap_s without a sighting, it is judged afresh."""

    def __init__(self, gap_s: float) -> None:
        self.gap_s = gap_s
        self._last_seen: dict[str, float] = {}

    def fresh(self, text: str, now: float) -> bool:
        last = self._last_seen.get(text)
        self._last_seen[text] = now
        if len(self._last_seen) > 64:
            self._last_seen = {t: s for t, s in self._last_seen.items() if now - s <= self.gap_s}
        return last is None or now - last > self.gap_s

    def touch(self, text: str, now: float) -> None:
        """The code was still being judged until now: a slow central answer must not make the
        frames that piled up meanwhile look like a fresh showing."""
        self._last_seen[text] = now


class Pipeline:
    def __init__(
        self,
        source: FrameSource,
        decoder: Decoder,
        handler: Handler,
        *,
        dedup_s: float = 2.0,
        camera_retry_s: float = 2.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        supervisor: Supervisor | None = None,
    ) -> None:
        # both clocks are injectable, so tests move time instead of sleeping through it
        self.wall, self.monotonic = wall, monotonic
        # the agent hands in its supervisor (shared with the scanner inputs); alone, we own one
        self._own_supervisor = supervisor is None
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        self.source, self.decoder, self.handler = source, decoder, handler
        self.slot = FrameSlot()
        self.dedup = Deduper(dedup_s)
        self.camera_retry_s = camera_retry_s
        self.decoded_frames = 0
        self.codes_seen = 0
        self.verdicts = 0
        self.camera_ok = False
        self.last_frame: LastFrame | None = None
        self.camera_error: str | None = None
        # monotonic times each thread last proved it is alive (the watchdog reads these)
        self.capture_beat = self.monotonic()
        self.decode_beat = self.monotonic()
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        stopped = self._stop.is_set
        if "capture" not in self.supervisor.workers:
            self.supervisor.add("capture", self._capture, stopped=stopped)
            self.supervisor.add("decode", self._decode, stopped=stopped)
        self.supervisor.start()

    def stop(self) -> None:
        self._stop.set()
        if self._own_supervisor:
            self.supervisor.stop()
        else:
            for name in ("capture", "decode"):
                thread = self.supervisor.workers[name].thread
                if thread is not None:
                    thread.join(timeout=5)
        self.source.close()

    def healthy(self, stall_s: float) -> bool:
        now = self.monotonic()
        return now - self.capture_beat < stall_s and now - self.decode_beat < stall_s

    def stats(self) -> dict[str, Any]:
        second_pass = getattr(self.decoder, "stats", None)
        return {
            "second_pass": (
                dataclasses.asdict(second_pass) if isinstance(second_pass, PassStats) else None
            ),
            "camera": self.source.name,
            "camera_ok": self.camera_ok,
            "camera_error": self.camera_error,
            "decoder": getattr(self.decoder, "name", "?"),
            "frames_captured": self.slot.captured,
            "frames_dropped": self.slot.dropped,
            "frames_decoded": self.decoded_frames,
            "codes_seen": self.codes_seen,
            "verdicts": self.verdicts,
            "restarts": {
                name: self.supervisor.workers[name].restarts
                for name in ("capture", "decode")
                if name in self.supervisor.workers
            },
        }

    # ----- threads -----

    def _capture(self) -> None:
        while not self._stop.is_set():
            self.capture_beat = self.monotonic()
            if not self.camera_ok:
                try:
                    self.source.open()
                except CameraError as exc:
                    # a missing camera is reported and retried, never fatal
                    if self.camera_error != str(exc):
                        logger.error(
                            "camera unavailable; retrying", extra={"fields": {"error": str(exc)}}
                        )
                    self.camera_error = str(exc)
                    self._stop.wait(self.camera_retry_s)
                    continue
                self.camera_ok, self.camera_error = True, None
                logger.info("camera open", extra={"fields": {"camera": self.source.name}})
            try:
                frame = self.source.read()
            except CameraError as exc:
                logger.error("camera lost; reopening", extra={"fields": {"error": str(exc)}})
                self.source.close()
                self.camera_ok, self.camera_error = False, str(exc)
                continue
            except Exception as exc:
                # a driver error of a kind we never saw: the device may be half-read, so the
                # restarted thread opens it afresh
                self.source.close()
                self.camera_ok, self.camera_error = False, f"{type(exc).__name__}: {exc}"
                raise
            if frame is None:
                if self.source.finished:
                    self._stop.wait(0.5)
                continue
            self.slot.put(frame, self.wall(), self.monotonic())
            fault_point("gate.capture")  # tests kill this thread here; the supervisor restarts it

    def _decode(self) -> None:
        while not self._stop.is_set():
            self.decode_beat = self.monotonic()
            item = self.slot.take(timeout=0.25)
            if item is None:
                continue
            fault_point("gate.decode")  # tests kill this thread here; the supervisor restarts it
            try:
                codes = self.decoder.decode(item.frame)
            except Exception:
                logger.exception("decoder failed on a frame")
                continue
            self.decoded_frames += 1
            # one attribute store per frame: the preview costs the pipeline nothing else
            self.last_frame = LastFrame(
                item.frame, tuple(tuple(c.corners) for c in codes), self.decoded_frames
            )
            now = self.monotonic()
            for code in codes:
                self.codes_seen += 1
                if not self.dedup.fresh(code.text, now):
                    continue
                try:
                    self.handler(code.text, item.wall, item.mono)
                    self.verdicts += 1
                except Exception:
                    # the outbox or an indicator failed; the next code must still be judged
                    logger.exception("deciding a scan failed")
                finally:
                    self.dedup.touch(code.text, self.monotonic())
