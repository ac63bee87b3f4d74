"""The frame-source interface every camera (real or fake) implements, and its one error type."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np

logger = logging.getLogger(__name__)

# A frame is an HxW (gray) or HxWx3 (BGR) uint8 array, as OpenCV and both decoders take it.
Frame = np.ndarray


class CameraError(Exception):
    """A source cannot be built (bad spec) or cannot deliver frames (camera missing or gone).

    The gate agent treats this as retryable: it logs, waits and calls open() again."""


class FrameSource(ABC):
    """A camera. read() blocks at most about one frame period, like a real camera does."""

    name: str = "source"
    # True once a source that cannot produce any more frames (a non-looping video) has ended.
    finished: bool = False

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or file; raise CameraError when it is not there."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None when there is no frame right now."""

    @abstractmethod
    def close(self) -> None:
        """Release the device. Safe to call twice and on a source that never opened."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Pacer:
    """Spaces reads at a frame rate so fakes behave like a camera; fps 0 means as fast as asked."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._next: float | None = None

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self._next is None or now - self._next > self.period:
            # First frame, or the consumer fell behind: restart the clock instead of bursting.
            self._next = now
        elif now < self._next:
            time.sleep(self._next - now)
        self._next += self.period


def blank_frame(width: int, height: int, level: int = 200) -> Frame:
    """What the camera sees with nothing held in front of it: a plain light-gray field."""
    return np.full((height, width), level, dtype=np.uint8)
