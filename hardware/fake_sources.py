"""Cameras for laptops, tests and replays: a video or image file, a watched folder, a synthetic
ticket renderer. First-class sources (ARCHITECTURE §8), not mocks."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2

from hardware.frames import CameraError, Frame, FrameSource, Pacer, blank_frame
from hardware.qr_render import render_qr_frame

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}
)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


class FileSource(FrameSource):
    """A video file played frame by frame, or a still image repeated like a live camera.

    fps None paces a video at its own rate and an image at 30; fps 0 means unpaced.
    loop applies to videos: at the end rewind, or else report finished and return None."""

    def __init__(self, path: str, *, fps: float | None = None, loop: bool = True) -> None:
        self.path = Path(path)
        self.name = f"file:{path}"
        self.fps = fps
        self.loop = loop
        self._still: Frame | None = None
        self._cap: cv2.VideoCapture | None = None
        self._pacer = Pacer(0)

    def open(self) -> None:
        self.close()
        self.finished = False
        if not self.path.is_file():
            raise CameraError(f"{self.name}: no such file")
        if is_image_path(self.path):
            still = cv2.imread(str(self.path), cv2.IMREAD_UNCHANGED)
            if still is None:
                raise CameraError(f"{self.name}: not a readable image")
            self._still = still
            self._pacer = Pacer(30 if self.fps is None else self.fps)
            return
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"{self.name}: not a readable video")
        self._cap = cap
        own_fps = cap.get(cv2.CAP_PROP_FPS) or 30
        self._pacer = Pacer(own_fps if self.fps is None else self.fps)

    def read(self) -> Frame | None:
        if self._still is not None:
            self._pacer.wait()
            return self._still.copy()
        if self._cap is None:
            raise CameraError(f"{self.name} is not open")
        if self.finished:
            return None
        self._pacer.wait()
        ok, frame = self._cap.read()
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok:
            self.finished = True
            return None
        return frame

    def close(self) -> None:
        self._still = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class DirSource(FrameSource):
    """Watches a folder: each new image is 'held in front of the camera' for hold_frames frames,
    one after another in arrival order, with blank frames in between.

    A file counts as new when its name, size or mtime differ from what was shown before, so a ticket
    written again under the same name is shown again. A file is read only once its size and mtime
    have stayed put for one scan (or it is older than settle_s), and a failed imread is retried on
    the next scan, so both write-then-rename and slow direct writes are safe. Files whose suffix is
    not an image suffix (x.png.tmp, x.part) are ignored."""

    def __init__(
        self,
        path: str,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 30,
        hold_frames: int = 9,
        skip_existing: bool = False,
        scan_interval_s: float = 0.05,
        settle_s: float = 0.2,
    ) -> None:
        self.path = Path(path)
        self.name = f"dir:{path}"
        self.width, self.height = width, height
        self.hold_frames = hold_frames
        self.skip_existing = skip_existing
        self.scan_interval_s = scan_interval_s
        self.settle_s = settle_s
        self._pacer = Pacer(fps)
        self._shown: dict[str, tuple[int, int]] = {}
        self._pending: dict[str, tuple[int, int]] = {}  # last stat of files not shown yet
        self._queue: deque[tuple[str, Frame]] = deque()
        self._current: Frame | None = None
        self._left = 0
        self._last_scan = float("-inf")
        self._opened = False

    def open(self) -> None:
        if not self.path.is_dir():
            raise CameraError(f"{self.name}: no such folder")
        self._shown.clear()
        self._pending.clear()
        self._queue.clear()
        self._current, self._left = None, 0
        if self.skip_existing:
            self._shown.update(self._stat_images())
        self._last_scan = float("-inf")
        self._opened = True

    def read(self) -> Frame | None:
        if not self._opened:
            raise CameraError(f"{self.name} is not open")
        self._pacer.wait()
        if self._left == 0:
            self._current = None
            if not self._queue:
                self._scan()
            if self._queue:
                name, self._current = self._queue.popleft()
                self._left = self.hold_frames
                logger.info("showing image", extra={"fields": {"source": self.name, "file": name}})
        if self._current is not None and self._left > 0:
            self._left -= 1
            return self._current.copy()
        return blank_frame(self.width, self.height)

    def close(self) -> None:
        self._opened = False
        self._queue.clear()
        self._current, self._left = None, 0

    def _stat_images(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        try:
            entries = list(os.scandir(self.path))
        except OSError as exc:
            raise CameraError(f"{self.name}: cannot list folder: {exc}") from exc
        for entry in entries:
            if entry.name.startswith(".") or not is_image_path(Path(entry.name)):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:  # renamed or removed between listing and stat
                continue
            if entry.is_file():
                found[entry.name] = (st.st_size, st.st_mtime_ns)
        return found

    def _scan(self) -> None:
        now = time.monotonic()
        if now - self._last_scan < self.scan_interval_s:
            return
        self._last_scan = now
        wall_ns = time.time_ns()
        ready: list[tuple[int, str, tuple[int, int]]] = []
        for name, stat in self._stat_images().items():
            if self._shown.get(name) == stat:
                continue
            old_enough = wall_ns - stat[1] >= self.settle_s * 1e9
            if self._pending.get(name) == stat or old_enough:
                ready.append((stat[1], name, stat))
            else:
                self._pending[name] = stat
        for _, name, stat in sorted(ready):
            image = cv2.imread(str(self.path / name), cv2.IMREAD_UNCHANGED)
            if image is None:
                # Probably still being written; look again next scan.
                self._pending[name] = stat
                continue
            self._pending.pop(name, None)
            self._shown[name] = stat
            self._queue.append((name, image))


PayloadProvider = Callable[[], str | None]


class SyntheticSource(FrameSource):
    """Renders whatever ticket the provider hands out as a QR in the frame; blank when it returns
    None. Use text= for a fixed code."""

    def __init__(
        self,
        *,
        payload: PayloadProvider | None = None,
        text: str | None = None,
        width: int = 640,
        height: int = 480,
        fps: float = 30,
        module_px: int | None = None,
        position: tuple[int, int] | None = None,
        error: str = "m",
    ) -> None:
        if payload is not None and text is not None:
            raise CameraError("synthetic: give payload or text, not both")
        if payload is not None and not callable(payload):
            raise CameraError("synthetic: payload must be a callable returning str or None")
        fixed = text
        self._payload: PayloadProvider = payload if payload is not None else (lambda: fixed)
        self.name = "synthetic" if text is None else f"synthetic:{text[:16]}"
        self.width, self.height = width, height
        self.module_px, self.position, self.error = module_px, position, error
        self._pacer = Pacer(fps)
        self._cache: tuple[str, Frame] | None = None  # rendering costs more than copying
        self._opened = False

    def open(self) -> None:
        self._opened = True

    def read(self) -> Frame | None:
        if not self._opened:
            raise CameraError(f"{self.name} is not open")
        self._pacer.wait()
        text = self._payload()
        if text is None:
            return blank_frame(self.width, self.height)
        if self._cache is None or self._cache[0] != text:
            frame = render_qr_frame(
                text,
                self.width,
                self.height,
                module_px=self.module_px,
                position=self.position,
                error=self.error,
            )
            self._cache = (text, frame)
        return self._cache[1].copy()

    def close(self) -> None:
        self._opened = False
        self._cache = None
