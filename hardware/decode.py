"""QR decoding behind one small interface: zxing-cpp (default) or pyzbar, both restricted to QR so
no time goes on barcode formats a ticket never uses."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

logger = logging.getLogger(__name__)

Point = tuple[int, int]


class DecoderError(Exception):
    """The decoder cannot be set up (library missing) or was handed something that is not a frame."""


@dataclass(frozen=True, slots=True)
class DecodedCode:
    text: str
    # top-left, top-right, bottom-right, bottom-left as the decoder saw them (image pixels)
    corners: tuple[Point, Point, Point, Point]


class Decoder(Protocol):
    name: str

    def decode(self, frame: np.ndarray) -> list[DecodedCode]: ...


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Both decoders work on luminance; converting once here keeps each from doing it its own way."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise DecoderError("a frame must be a uint8 numpy array")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise DecoderError(f"unsupported frame shape {frame.shape}")


class ZxingDecoder:
    name = "zxing"

    def __init__(
        self, *, try_rotate: bool = True, try_downscale: bool = True, try_invert: bool = False
    ) -> None:
        import zxingcpp

        self._zx = zxingcpp
        # In zxing-cpp 3.x "QRCode" is the whole family (Micro QR, rMQR too); tickets are always
        # Model 2, so ask for just that. 2.x has no Model2 member and its QRCode means exactly that.
        formats = zxingcpp.BarcodeFormat
        qr_only = getattr(formats, "QRCodeModel2", formats.QRCode)
        # try_invert off by default: tickets are dark on light and it doubles the work on every
        # empty frame. Plain text mode returns the payload as encoded, without HRI decoration.
        self._kwargs: dict[str, Any] = {
            "formats": qr_only,
            "try_rotate": try_rotate,
            "try_downscale": try_downscale,
            "try_invert": try_invert,
            "text_mode": zxingcpp.TextMode.Plain,
        }

    def decode(self, frame: np.ndarray) -> list[DecodedCode]:
        gray = to_gray(frame)
        out = []
        for code in self._zx.read_barcodes(gray, **self._kwargs):
            p = code.position
            corners = tuple(
                (int(pt.x), int(pt.y))
                for pt in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
            )
            out.append(DecodedCode(code.text, corners))  # type: ignore[arg-type]
        return out


class PyzbarDecoder:
    name = "pyzbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as exc:
            # pyzbar is a thin ctypes wrapper; the library itself is a system package.
            raise DecoderError(
                f"pyzbar cannot load the zbar library ({exc}); "
                "install it with: apt-get install libzbar0"
            ) from exc
        self._pyzbar = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, frame: np.ndarray) -> list[DecodedCode]:
        gray = to_gray(frame)
        out = []
        for sym in self._pyzbar.decode(gray, symbols=self._symbols):
            text = sym.data.decode("utf-8", errors="replace")
            if len(sym.polygon) == 4:
                pts = [(int(p.x), int(p.y)) for p in sym.polygon]
                if _signed_area(pts) < 0:
                    # zbar lists corners counter-clockwise; match zxing's clockwise order
                    pts = [pts[0], *reversed(pts[1:])]
            else:  # zbar gives a hull; fall back to its bounding box
                r = sym.rect
                x0, y0, x1, y1 = r.left, r.top, r.left + r.width, r.top + r.height
                pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            out.append(DecodedCode(text, (pts[0], pts[1], pts[2], pts[3])))
        return out


def _signed_area(pts: list[Point]) -> float:
    """Positive when the points run clockwise on screen (y grows downwards)."""
    return (
        sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True))
        / 2
    )


DECODERS = ("zxing", "pyzbar")


def make_decoder(name: str = "zxing", **opts: Any) -> Decoder:
    if name == "zxing":
        return ZxingDecoder(**opts)
    if name == "pyzbar":
        if opts:
            raise DecoderError(f"decoder pyzbar takes no options, got {', '.join(sorted(opts))}")
        return PyzbarDecoder()
    raise DecoderError(f"unknown decoder {name!r}; expected one of {', '.join(DECODERS)}")


def usable_decoders(names: tuple[str, ...] = DECODERS) -> tuple[tuple[str, ...], dict[str, str]]:
    """The decoders that load on this machine, and why each other one does not (pyzbar without
    the system's libzbar0): benches measure the first and report the second."""
    usable: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            make_decoder(name)
        except DecoderError as exc:
            skipped[name] = str(exc)
        else:
            usable.append(name)
    return tuple(usable), skipped
