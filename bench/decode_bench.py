"""Milliseconds per decode for each decoder, on camera-sized frames with and without a ticket.

Run: .venv/bin/python bench/decode_bench.py [--iterations N] [--quick]  (--quick: 3 iterations)
"Empty" frames are a textured scene (blurred noise, what a camera sees with nothing held up),
which costs more than a flat field; "ticket" frames add a 139-character TR1: code at 4 px/module."""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import cv2
import numpy as np

from hardware.decode import ZxingDecoder, make_decoder, usable_decoders
from hardware.qr_render import render_qr_frame

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def ticket_payload() -> str:
    rng = np.random.default_rng(0)
    return "TR1:" + "".join(BASE45[i] for i in rng.integers(0, len(BASE45), 135))


def scene(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (height, width), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def frames(width: int, height: int, payload: str) -> dict[str, np.ndarray]:
    empty = scene(width, height)
    code = render_qr_frame(payload, width, height, module_px=4, background=255)
    ticket = empty.copy()
    mask = code < 255
    side = (41 + 8) * 4
    x, y = (width - side) // 2, (height - side) // 2
    ticket[y : y + side, x : x + side] = 255  # the ticket's white paper, quiet zone included
    ticket[mask] = 0
    return {"empty": empty, "ticket": ticket}


def time_decode(decoder, frame: np.ndarray, iterations: int) -> tuple[float, float, int]:
    decoder.decode(frame)  # warm-up
    samples = []
    found = 0
    for _ in range(iterations):
        start = time.perf_counter()
        found = len(decoder.decode(frame))
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=50, help="decodes per frame (50)")
    parser.add_argument("--quick", action="store_true", help="3 iterations: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.iterations = 3
    payload = ticket_payload()
    usable, skipped = usable_decoders()
    decoders: dict[str, Any] = {}
    if "zxing" in usable:
        decoders["zxing"] = make_decoder("zxing")
        decoders["zxing+invert"] = ZxingDecoder(try_invert=True)
    if "pyzbar" in usable:
        decoders["pyzbar"] = make_decoder("pyzbar")
    for name, reason in skipped.items():
        print(f"# skipped decoder {name}: {reason}")
    if not decoders:
        raise SystemExit("no decoder loads on this machine; nothing to measure")
    print(f"# {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"{'decoder':<14}{'frame':<11}{'content':<9}{'median ms':>10}{'p95 ms':>9}{'codes':>7}")
    for width, height in ((640, 480), (1280, 720)):
        for content, frame in frames(width, height, payload).items():
            for name, decoder in decoders.items():
                med, p95, found = time_decode(decoder, frame, args.iterations)
                size = f"{width}x{height}"
                print(f"{name:<14}{size:<11}{content:<9}{med:>10.2f}{p95:>9.2f}{found:>7}")


if __name__ == "__main__":
    main()
