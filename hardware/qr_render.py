"""Renders a QR code (segno) into a camera-sized frame: the synthetic camera's picture of a ticket."""

from __future__ import annotations

import numpy as np
import segno

from hardware.frames import CameraError, Frame

QUIET_ZONE = 4  # modules of white border the QR standard asks for


def qr_modules(text: str, error: str = "m") -> np.ndarray:
    """The code's dark modules as a bool matrix, quiet zone included.

    boost_error is off so the error level is the one asked for, as central's tickets use."""
    qr = segno.make(text, error=error, micro=False, boost_error=False)
    core = np.array([list(row) for row in qr.matrix], dtype=bool)
    return np.pad(core, QUIET_ZONE, constant_values=False)


def render_qr_frame(
    text: str,
    width: int = 640,
    height: int = 480,
    *,
    module_px: int | None = None,
    position: tuple[int, int] | None = None,
    error: str = "m",
    background: int = 200,
) -> Frame:
    """A gray frame with the code drawn at position (top-left, default centred).

    module_px defaults to the largest whole size that fills at most 60% of the short side."""
    modules = qr_modules(text, error)
    n = modules.shape[0]
    if module_px is None:
        module_px = max(1, int(min(width, height) * 0.6) // n)
    side = n * module_px
    if position is None:
        position = ((width - side) // 2, (height - side) // 2)
    x, y = position
    if x < 0 or y < 0 or x + side > width or y + side > height:
        raise CameraError(f"a {side}px code at ({x},{y}) does not fit in a {width}x{height} frame")
    code = np.where(modules, 0, 255).astype(np.uint8)
    code = np.kron(code, np.ones((module_px, module_px), dtype=np.uint8))
    frame = np.full((height, width), background, dtype=np.uint8)
    frame[y : y + side, x : x + side] = code
    return frame
