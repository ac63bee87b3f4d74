"""A corpus of hard frames: real ticket codes (signed TR1 tokens) photographed badly — glare,
perspective, curved paper, low contrast, a phone screen's moiré (and its dark mode), motion
blur — each on a textured scene with sensor noise and JPEG loss, as a gate camera sees them.

Deterministic: the same seed gives the same frames, so a decode rate measured on it can be
repeated and compared. Used by the second-pass tests and by bench/hard_frames.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardware.qr_render import qr_modules
from proto.ticket_token import sign_token

WIDTH, HEIGHT = 640, 480
Rng = np.random.Generator


@dataclass(frozen=True)
class HardFrame:
    distortion: str
    seed: int
    payload: str
    frame: np.ndarray


def ticket_codes(count: int, seed: int = 0) -> list[str]:
    """count real ticket tokens, signed with a key derived from seed (never a real key)."""
    rng = np.random.default_rng(seed)
    key = Ed25519PrivateKey.from_private_bytes(rng.bytes(32))
    codes = []
    for i in range(count):
        seat = "%08x-%04x-4%03x-8%03x-%012x" % (  # noqa: UP031 - a UUID from random parts
            int(rng.integers(0, 2**32)),
            int(rng.integers(0, 2**16)),
            int(rng.integers(0, 2**12)),
            int(rng.integers(0, 2**12)),
            int(rng.integers(0, 2**48)),
        )
        codes.append(sign_token(seat, i % 5, 1_800_000_000 + i, 1, key))
    return codes


def _scene(rng: Rng) -> np.ndarray:
    """What is behind the ticket: a blurred, uneven background."""
    noise = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8), dtype=np.uint8)
    base = cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return 60 + base * 0.45


def _code_image(payload: str, module_px: int, dark: float, light: float) -> np.ndarray:
    modules = qr_modules(payload)
    img = np.where(modules, dark, light).astype(np.float32)
    return np.kron(img, np.ones((module_px, module_px), dtype=np.float32))


def _paste(scene: np.ndarray, img: np.ndarray, rng: Rng, margin: int = 24) -> tuple[int, int]:
    """Paste img on scene with a paper border around it; returns its top-left."""
    h, w = img.shape
    x = int(rng.integers(margin, WIDTH - w - margin))
    y = int(rng.integers(margin, HEIGHT - h - margin))
    paper = float(img.max())
    scene[y - margin // 2 : y + h + margin // 2, x - margin // 2 : x + w + margin // 2] = paper
    scene[y : y + h, x : x + w] = img
    return x, y


def _camera(img: np.ndarray, rng: Rng, noise: float = 3.0) -> np.ndarray:
    """Sensor noise and the JPEG a cheap camera sends."""
    noisy = img + rng.normal(0, noise, img.shape)
    frame = np.clip(noisy, 0, 255).astype(np.uint8)
    quality = int(rng.integers(55, 80))
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
    assert decoded is not None
    return np.asarray(decoded)


def _ticket_on_scene(payload: str, rng: Rng, module_px: int) -> np.ndarray:
    scene = _scene(rng)
    _paste(scene, _code_image(payload, module_px, 25, 235), rng)
    return scene


def glare(payload: str, rng: Rng) -> np.ndarray:
    """A lamp reflected in glossy paper: a washed-out, saturated patch over part of the code."""
    scene = _scene(rng)
    module_px = int(rng.integers(4, 6))
    img = _code_image(payload, module_px, 25, 235)
    x, y = _paste(scene, img, rng)
    side = img.shape[0]
    cx = x + side * rng.uniform(0.2, 0.8)
    cy = y + side * rng.uniform(0.2, 0.8)
    sigma = side * rng.uniform(0.18, 0.3)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    strength = rng.uniform(0.85, 1.0)
    # glare adds light and flattens what is under it towards white; the print still shows faintly
    lit = scene * (1 - strength * blob) + 250 * strength * blob + 50 * blob
    return _camera(lit, rng)


def perspective(payload: str, rng: Rng) -> np.ndarray:
    """The ticket held at a steep angle: one side far smaller than the other."""
    module_px = int(rng.integers(4, 6))
    scene = _ticket_on_scene(payload, rng, module_px)
    w, h = WIDTH, HEIGHT
    squeeze = rng.uniform(0.34, 0.46)
    side = int(rng.integers(0, 2))
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = src.copy()
    if side == 0:  # far edge on the right
        dst[1] = [w * (1 - squeeze * 0.5), h * squeeze]
        dst[2] = [w * (1 - squeeze * 0.5), h * (1 - squeeze)]
    else:  # far edge at the top
        dst[0] = [w * squeeze, h * squeeze * 0.5]
        dst[1] = [w * (1 - squeeze), h * squeeze * 0.5]
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(scene, matrix, (w, h), flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones_like(scene), matrix, (w, h), flags=cv2.INTER_LINEAR)
    # what lies outside the tilted plane is more scene, not smeared edge pixels
    warped = warped * inside + _scene(rng) * (1 - inside)
    return _camera(warped, rng)


def curved(payload: str, rng: Rng) -> np.ndarray:
    """A ticket bent round a hand: modules crowd towards the edges, shading across the bend."""
    module_px = int(rng.integers(5, 7))
    scene = _ticket_on_scene(payload, rng, module_px)
    w, h = WIDTH, HEIGHT
    bend = rng.uniform(0.75, 1.1)  # radians of the cylinder seen
    xs = np.linspace(-1, 1, w, dtype=np.float32)
    # a point at angle t on the cylinder shows at sin(t): invert to find the source column
    src_x = (np.arcsin(np.clip(xs * np.sin(bend), -1, 1)) / bend + 1) * (w - 1) / 2
    sag = rng.uniform(10, 22)
    map_x = np.tile(src_x, (h, 1)).astype(np.float32)
    map_y = np.arange(h, dtype=np.float32)[:, None] - sag * (1 - xs[None, :] ** 2) + sag / 2
    warped = cv2.remap(
        scene, map_x, map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    shade = 0.55 + 0.45 * np.cos(xs * bend)[None, :]
    return _camera(warped * shade, rng)


def low_contrast(payload: str, rng: Rng) -> np.ndarray:
    """Faded thermal print in a dim hall: dark and light modules a few dozen levels apart."""
    scene = _scene(rng) * 0.5 + 40
    module_px = int(rng.integers(4, 6))
    dark = rng.uniform(95, 110)
    light = dark + rng.uniform(14, 22)
    _paste(scene, _code_image(payload, module_px, dark, light), rng)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / WIDTH + np.sin(angle) * yy / HEIGHT) * rng.uniform(30, 50)
    return _camera(scene + ramp, rng, noise=4.0)


def _screen(payload: str, rng: Rng, dark_mode: bool) -> np.ndarray:
    """A phone showing the code, filmed: the screen's pixel grid beats against the sensor's."""
    scene = _scene(rng) * 0.6
    module_px = 3
    img = _code_image(payload, module_px, 235, 20) if dark_mode else None
    if img is None:
        img = _code_image(payload, module_px, 20, 235)
    # each screen pixel is lit in its middle only: a grid of gaps
    grid = np.ones((module_px, module_px), dtype=np.float32)
    grid[0, :] = grid[:, 0] = 0.45
    tiled = img * np.tile(grid, (img.shape[0] // module_px, img.shape[1] // module_px))
    up = cv2.resize(tiled, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    scale = rng.uniform(0.48, 0.56)  # screen pixels to camera pixels: not a whole ratio
    angle = rng.uniform(-8, 8)
    side = up.shape[0]
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
    out = int(side * scale * 1.2)
    matrix[:, 2] += (out - side) / 2
    shot = cv2.warpAffine(up, matrix, (out, out), flags=cv2.INTER_NEAREST, borderValue=40)
    x = int(rng.integers(10, WIDTH - out - 10))
    y = int(rng.integers(10, HEIGHT - out - 10))
    scene[y : y + out, x : x + out] = shot
    return _camera(scene, rng)


def phone_moire(payload: str, rng: Rng) -> np.ndarray:
    return _screen(payload, rng, dark_mode=False)


def phone_dark_mode(payload: str, rng: Rng) -> np.ndarray:
    """The same screen in dark mode: a light code on black (zxing's fast pass never inverts)."""
    return _screen(payload, rng, dark_mode=True)


def motion_blur(payload: str, rng: Rng) -> np.ndarray:
    """The ticket still moving towards the camera at the shutter."""
    module_px = int(rng.integers(5, 7))
    scene = _ticket_on_scene(payload, rng, module_px)
    length = int(rng.integers(8, 13))
    line = np.zeros((length, length), dtype=np.float32)
    line[length // 2, :] = 1.0 / length
    angle = rng.uniform(0, 180)
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = np.asarray(cv2.warpAffine(line, rot, (length, length)), dtype=np.float32)
    kernel /= kernel.sum()
    return _camera(cv2.filter2D(scene, -1, kernel), rng)


DISTORTIONS: dict[str, Callable[[str, Rng], np.ndarray]] = {
    "glare": glare,
    "perspective": perspective,
    "curved_paper": curved,
    "low_contrast": low_contrast,
    "phone_moire": phone_moire,
    "phone_dark_mode": phone_dark_mode,
    "motion_blur": motion_blur,
}


def corpus(per_distortion: int, seed: int = 15) -> Iterator[HardFrame]:
    """per_distortion frames of each distortion, each from its own seed (seed, index)."""
    codes = ticket_codes(per_distortion, seed)
    for d_index, (name, distort) in enumerate(DISTORTIONS.items()):
        for i in range(per_distortion):
            frame_seed = seed * 100_000 + d_index * 1000 + i
            rng = np.random.default_rng(frame_seed)
            yield HardFrame(name, frame_seed, codes[i], distort(codes[i], rng))
