"""Real cameras: a V4L2 device through OpenCV, and the Raspberry Pi camera through picamera2."""

from __future__ import annotations

import logging
from typing import Any

import cv2

from hardware.frames import CameraError, Frame, FrameSource

logger = logging.getLogger(__name__)

# OpenCV prints its own "can't open camera by index" warning on every attempt; the gate reports a
# missing camera once itself, with what to do about it.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# A USB camera that is unplugged keeps returning failed reads instead of raising; after this many
# in a row we call it gone so the agent reopens it rather than staring at nothing forever.
MAX_FAILED_READS = 50


class V4l2Source(FrameSource):
    def __init__(
        self, device: int | str, *, width: int = 640, height: int = 480, fps: float = 30
    ) -> None:
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.name = f"v4l2:{device}"
        self._cap: cv2.VideoCapture | None = None
        self._failed = 0

    def open(self) -> None:
        self.close()
        cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"camera {self.name} could not be opened (is it plugged in?); without a camera "
                "use --camera dir:PATH, file:PATH or synthetic"
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        # Keep the driver queue short: the pipeline wants the newest frame, not a backlog.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap
        self._failed = 0
        logger.info(
            "camera opened",
            extra={
                "fields": {
                    "source": self.name,
                    "width": cap.get(cv2.CAP_PROP_FRAME_WIDTH),
                    "height": cap.get(cv2.CAP_PROP_FRAME_HEIGHT),
                }
            },
        )

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"camera {self.name} is not open")
        ok, frame = self._cap.read()
        if ok and frame is not None:
            self._failed = 0
            return frame
        self._failed += 1
        if self._failed >= MAX_FAILED_READS:
            self.close()
            raise CameraError(f"camera {self.name} stopped delivering frames")
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Picamera2Source(FrameSource):
    """The Pi camera. Asks for YUV420 and hands out the luma plane: gray is all the decoder needs
    and it skips a colour conversion on a small CPU."""

    def __init__(self, *, width: int = 640, height: int = 480, fps: float = 30) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.name = "picamera2"
        self._cam: Any = None

    def open(self) -> None:
        self.close()
        try:
            from picamera2 import Picamera2  # only on a Pi; imported only when chosen
        except ImportError as exc:
            raise CameraError(
                f"picamera2 is not installed: {exc} (on Raspberry Pi OS: apt install python3-picamera2)"
            ) from exc
        try:
            cam = Picamera2()
            controls = {"FrameRate": float(self.fps)} if self.fps else {}
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "YUV420"}, controls=controls
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:  # libcamera raises assorted types for "no camera"
            raise CameraError(f"camera picamera2 could not be opened: {exc}") from exc
        self._cam = cam

    def read(self) -> Frame | None:
        if self._cam is None:
            raise CameraError("camera picamera2 is not open")
        try:
            yuv = self._cam.capture_array("main")
        except Exception as exc:
            self.close()
            raise CameraError(f"camera picamera2 stopped delivering frames: {exc}") from exc
        return yuv[: self.height, : self.width]

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception:  # closing a camera that already vanished must not mask the cause
                logger.warning("picamera2 close failed", exc_info=True)
            self._cam = None
