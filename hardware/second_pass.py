"""The hard-frame second pass: when the fast zxing pass finds nothing in a frame that looks like it
holds a code (an edge-dense, roughly square region — the mark a QR's modules leave — or a code in
the previous frame), try what helps real photographs on that region, cheapest first, within a
time budget: inversion (a phone in dark mode), contrast equalisation (glare, faded print, dim
light), upscaling (small or moiré-ridden modules), sharpening (motion blur), a global binarizer,
and pyzbar as a second opinion. Empty frames cost one small edge map on top of the fast pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from hardware.decode import DecodedCode, Decoder, ZxingDecoder, to_gray

logger = logging.getLogger(__name__)

# A frame's work must end well inside a camera frame period at 15-30 fps on a Pi-class CPU.
DEFAULT_BUDGET_MS = 40.0
# the candidate search runs on a half-size frame: a 4 px module is still 2 px there
SEARCH_SCALE = 2
# a code region: at least this many full-size pixels on its short side (41 modules at 2 px)
MIN_SIDE_PX = 80
# a region spanning more than this share of the frame both ways is texture, not a code
MAX_SPAN = 0.8
MARGIN = 0.12
# Of the decode thread's time, at most this share goes to second passes: a scene that keeps
# looking code-like (a patterned shirt, a poster) must not drag the frame rate down for long.
MAX_SHARE = 0.5  # of the region's size, so the quiet zone is inside the crop


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    w: int
    h: int


@dataclass
class PassStats:
    frames: int = 0
    fast_hits: int = 0
    candidates: int = 0
    second_hits: int = 0
    budget_stops: int = 0
    share_skips: int = 0
    hits_by_step: dict[str, int] = field(default_factory=dict)


def code_region(gray: np.ndarray) -> Region | None:
    """The bounding box of the largest edge-dense, roughly square blob, or None.

    QR modules make a patch where nearly every pixel sits on a light/dark edge; paper, skin and
    blank walls do not. A morphological gradient (max - min over 3x3) finds edges at any
    contrast: the threshold follows the frame's own gradient spread, so faded print counts."""
    small = cv2.resize(
        gray,
        (gray.shape[1] // SEARCH_SCALE, gray.shape[0] // SEARCH_SCALE),
        interpolation=cv2.INTER_AREA,
    )
    grad = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    # the 99th percentile of the edge strengths, from a histogram (a sort costs ten times more)
    cumulative = np.cumsum(np.bincount(grad.ravel(), minlength=256))
    peak = int(np.searchsorted(cumulative, 0.99 * cumulative[-1]))
    if peak < 12:
        return None  # a flat field: nothing with edges in view
    _, edges = cv2.threshold(grad, max(8, peak // 3), 255, cv2.THRESH_BINARY)
    blob = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    blob = cv2.morphologyEx(blob, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(blob, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    best: Region | None = None
    best_area = 0.0
    min_side = MIN_SIDE_PX // SEARCH_SCALE
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        area = cv2.contourArea(contour)
        if min(w, h) < min_side or not 0.33 <= w / h <= 3.0:
            continue
        if w > small.shape[1] * MAX_SPAN and h > small.shape[0] * MAX_SPAN:
            continue  # edges everywhere: a textured scene (a code never fills the whole view)
        if area < 0.45 * w * h:  # a scattered texture, not a solid patch
            continue
        if area > best_area:
            best, best_area = Region(x, y, w, h), area
    if best is None:
        return None
    s = SEARCH_SCALE
    return Region(best.x * s, best.y * s, best.w * s, best.h * s)


def _crop(gray: np.ndarray, region: Region) -> tuple[np.ndarray, int, int]:
    mx, my = int(region.w * MARGIN), int(region.h * MARGIN)
    x0, y0 = max(0, region.x - mx), max(0, region.y - my)
    x1 = min(gray.shape[1], region.x + region.w + mx)
    y1 = min(gray.shape[0], region.y + region.h + my)
    return np.ascontiguousarray(gray[y0:y1, x0:x1]), x0, y0


_CLAHE = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4))


def _clahe(img: np.ndarray) -> np.ndarray:
    return _CLAHE.apply(img)


def _upscale(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)


def _smooth_upscale(img: np.ndarray) -> np.ndarray:
    # a blur a little wider than the screen's pixel grid removes the moiré beat, then the
    # upscale gives the binarizer whole pixels per module again
    return _upscale(cv2.GaussianBlur(img, (0, 0), 1.3))


def _sharpen(img: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(img, (0, 0), 2.0)
    return cv2.addWeighted(img, 2.2, blurred, -1.2, 0)


# (name, preprocessing, scale it applies, binarizer name or "pyzbar")
Step = tuple[str, Callable[[np.ndarray], np.ndarray], float, str]
STEPS: tuple[Step, ...] = (
    ("equalise", _clahe, 1.0, "LocalAverage"),
    ("upscale", _upscale, 2.0, "LocalAverage"),
    ("smooth_upscale", _smooth_upscale, 2.0, "LocalAverage"),
    ("sharpen", _sharpen, 1.0, "LocalAverage"),
    ("global_binarizer", _clahe, 1.0, "GlobalHistogram"),
    ("pyzbar", lambda img: img, 1.0, "pyzbar"),
)


class HardFrameDecoder:
    """A Decoder: the fast pass, and the second pass on the frames that look like they need it."""

    def __init__(
        self,
        fast: Decoder | None = None,
        *,
        budget_ms: float = DEFAULT_BUDGET_MS,
        use_pyzbar: bool = True,
        max_share: float | None = MAX_SHARE,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """max_share None: no share limit (a benchmark measuring what the pass can decode)."""
        self.fast = fast if fast is not None else ZxingDecoder()
        self.name = f"{getattr(self.fast, 'name', 'fast')}+second-pass"
        self.budget_ms = budget_ms
        self.clock = clock
        self.stats = PassStats()
        self.max_share = max_share
        # milliseconds of second pass the decoder may still spend; refills at max_share of the
        # time that passes, up to one budget
        self._credit_ms = budget_ms
        self._last = clock()
        self._had_code = False  # the previous frame held a code: this one probably does too
        import zxingcpp

        self._zx = zxingcpp
        formats = zxingcpp.BarcodeFormat
        self._formats: Any = getattr(formats, "QRCodeModel2", formats.QRCode)
        self._pyzbar: Any = None
        if use_pyzbar:
            try:
                from pyzbar import pyzbar

                self._pyzbar = pyzbar
            except ImportError:  # libzbar0 missing: the second opinion is skipped, not fatal
                logger.warning("pyzbar unavailable; second pass runs without it")

    def forget(self) -> None:
        """Drop what the previous frame said (frames that are not a sequence, as in a corpus)."""
        self._had_code = False

    def decode(self, frame: np.ndarray) -> list[DecodedCode]:
        gray = to_gray(frame)
        self.stats.frames += 1
        codes = self.fast.decode(gray)
        if codes:
            self.stats.fast_hits += 1
            self._had_code = True
            return codes
        started = self.clock()
        if self.max_share is not None:
            elapsed_ms = (started - self._last) * 1000
            self._credit_ms = min(self.budget_ms, self._credit_ms + elapsed_ms * self.max_share)
            self._last = started
            if self._credit_ms <= 0:
                self.stats.share_skips += 1
                return []
        region = code_region(gray)
        if region is None and self._had_code:
            # the code was there a moment ago; look at the whole frame
            region = Region(0, 0, gray.shape[1], gray.shape[0])
        self._had_code = False
        if region is None:
            return []
        self.stats.candidates += 1
        codes = self._second_pass(gray, region, started)
        if self.max_share is not None:
            self._credit_ms -= (self.clock() - started) * 1000
        if codes:
            self.stats.second_hits += 1
            self._had_code = True
        return codes

    def _second_pass(self, gray: np.ndarray, region: Region, started: float) -> list[DecodedCode]:
        crop, x0, y0 = _crop(gray, region)
        for name, prepare, scale, binarizer in STEPS:
            if (self.clock() - started) * 1000 > self.budget_ms:
                self.stats.budget_stops += 1
                return []
            if binarizer == "pyzbar" and self._pyzbar is None:
                continue
            img = prepare(crop)
            texts_corners = self._read(img, binarizer)
            if texts_corners:
                self.stats.hits_by_step[name] = self.stats.hits_by_step.get(name, 0) + 1
                return [
                    DecodedCode(
                        text,
                        tuple(  # type: ignore[arg-type]
                            (int(x / scale) + x0, int(y / scale) + y0) for x, y in corners
                        ),
                    )
                    for text, corners in texts_corners
                ]
        return []

    def _read(self, img: np.ndarray, binarizer: str) -> list[tuple[str, list[tuple[float, float]]]]:
        if binarizer == "pyzbar":
            found = []
            for sym in self._pyzbar.decode(img, symbols=[self._pyzbar.ZBarSymbol.QRCODE]):
                pts = [(float(p.x), float(p.y)) for p in sym.polygon][:4]
                while len(pts) < 4:
                    pts.append(pts[-1] if pts else (0.0, 0.0))
                found.append((sym.data.decode("utf-8", errors="replace"), pts))
            return found
        out = []
        for code in self._zx.read_barcodes(
            img,
            formats=self._formats,
            try_rotate=True,
            try_downscale=False,
            # a phone in dark mode shows a light code on black; the quiet zone's polarity cannot
            # be told from a crop that may hold the phone's bezel, so zxing tries both
            try_invert=True,
            text_mode=self._zx.TextMode.Plain,
            binarizer=getattr(self._zx.Binarizer, binarizer),
        ):
            p = code.position
            out.append(
                (
                    code.text,
                    [
                        (float(pt.x), float(pt.y))
                        for pt in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
                    ],
                )
            )
        return out
