"""The camera preview for the dashboard: the frame the decoder last saw, scaled down, with the
codes it found outlined, as JPEG.

The pipeline only keeps a reference to its last frame; all the work here (resize, draw, encode)
happens only while a preview client is connected, in a worker thread of the dashboard, at most
`fps` times a second, and once per frame however many clients watch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import cv2
import numpy as np

from gate_agent.pipeline import LastFrame

logger = logging.getLogger(__name__)

OUTLINE_BGR = (0, 220, 0)


def render_jpeg(last: LastFrame, width: int = 480, quality: int = 70) -> bytes:
    frame = last.frame
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    scale = min(1.0, width / frame.shape[1])
    if scale < 1.0:
        size = (int(frame.shape[1] * scale), int(frame.shape[0] * scale))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    else:
        frame = frame.copy()  # never draw on the pipeline's own frame
    for corners in last.corners:
        pts = np.array([[int(x * scale), int(y * scale)] for x, y in corners], dtype=np.int32)
        cv2.polylines(frame, [pts], isClosed=True, color=OUTLINE_BGR, thickness=3)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


class PreviewEncoder:
    """Shared by all preview clients: encodes a frame once, the first time anyone asks for it."""

    def __init__(self, latest: Callable[[], LastFrame | None], width: int = 480) -> None:
        self.latest = latest
        self.width = width
        self.encoded = 0  # frames encoded, for tests and the benchmark
        self._seq = -1
        self._jpeg: bytes | None = None
        self._lock = asyncio.Lock()

    async def jpeg(self) -> tuple[int, bytes] | None:
        async with self._lock:
            last = self.latest()
            if last is None:
                return None
            if last.seq != self._seq:
                self._jpeg = await asyncio.to_thread(render_jpeg, last, self.width)
                self._seq = last.seq
                self.encoded += 1
            assert self._jpeg is not None
            return self._seq, self._jpeg
