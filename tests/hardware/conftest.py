"""Ticket-like payloads and QR renderings for the hardware tests (segno + OpenCV, no camera)."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest
import segno

BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def make_payload(seed: int = 0) -> str:
    """Shaped like central's token (ARCHITECTURE §5.3): 'TR1:' and 135 base45 characters."""
    rng = random.Random(seed)
    return "TR1:" + "".join(rng.choice(BASE45_ALPHABET) for _ in range(135))


def render_code(
    text: str,
    *,
    width: int = 640,
    height: int = 480,
    module_px: int = 4,
    at: tuple[int, int] | None = None,
    background: int = 230,
) -> np.ndarray:
    """A gray frame with the QR (error level M, quiet zone 4) pasted in, rendered independently of
    hardware.qr_render so decoder tests do not lean on the code under test."""
    qr = segno.make(text, error="m", micro=False, boost_error=False)
    code = np.array([list(r) for r in qr.matrix], dtype=np.uint8)
    code = np.pad(code, 4)
    img = np.where(code == 1, 0, 255).astype(np.uint8).repeat(module_px, 0).repeat(module_px, 1)
    frame = np.full((height, width), background, dtype=np.uint8)
    side = img.shape[0]
    x, y = at if at is not None else ((width - side) // 2, (height - side) // 2)
    frame[y : y + side, x : x + side] = img
    return frame


@pytest.fixture
def payload() -> str:
    return make_payload()


@pytest.fixture
def render() -> Callable[..., np.ndarray]:
    return render_code


@pytest.fixture
def payloads() -> Callable[[int], str]:
    return make_payload
