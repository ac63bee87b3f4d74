"""Milliseconds per decode for each decoder, on camera-sized frames with and without a ticket.

Run: .venv/bin/python bench/decode_bench.py [--iterations N] [--quick]  (--quick: 3 iterations)
"Empty" frames are a textured scene (blurred noise, what a camera sees with nothing held up),
which costs more than a flat field; "TR1" frames add central's 139-character code (QR version 6)
and "TR2" frames the phone-made 300-character device-bound code (version 10), each really signed
and drawn at 4 px/module. fps = 1000 / median ms: the frames one core decodes per second."""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from central.progress import Progress
from hardware.decode import ZxingDecoder, make_decoder, usable_decoders
from hardware.qr_render import qr_modules, render_qr_frame
from proto.ticket_token import issue_device_cert, sign_device_code, sign_token

SEAT = "3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f809a1b"


def ticket_payloads() -> dict[str, str]:
    """A real TR1 code and a real TR2 code (central's key, a phone's P-256 key)."""
    central = Ed25519PrivateKey.generate()
    phone = ec.generate_private_key(ec.SECP256R1())
    point = phone.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    now = int(time.time())
    cert = issue_device_cert(SEAT, 1, now, 1, 1, now + 86400, point, central)
    return {
        "TR1": sign_token(SEAT, 1, now, 1, central),
        "TR2": sign_device_code(cert, now, phone),
    }


def scene(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (height, width), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def frames(width: int, height: int, payloads: dict[str, str]) -> dict[str, np.ndarray]:
    empty = scene(width, height)
    out = {"empty": empty}
    for name, payload in payloads.items():
        code = render_qr_frame(payload, width, height, module_px=4, background=255)
        ticket = empty.copy()
        side = qr_modules(payload).shape[0] * 4  # quiet zone included
        x, y = (width - side) // 2, (height - side) // 2
        ticket[y : y + side, x : x + side] = 255  # the ticket's white paper
        ticket[code < 255] = 0
        out[name] = ticket
    return out


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


# what --quick sets; tests/docs/quick_runs.py reads it: documented commands that differ only in
# these flags are the same run under --quick, so the docs test runs them once
QUICK = {"iterations": 3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=50, help="decodes per frame (50)")
    parser.add_argument("--quick", action="store_true", help="3 iterations: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    payloads = ticket_payloads()
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
    print(
        f"{'decoder':<14}{'frame':<11}{'content':<9}{'median ms':>10}{'p95 ms':>9}"
        f"{'fps':>8}{'codes':>7}"
    )
    # what the run is doing, on stderr as it happens; the figures go to stdout
    progress = Progress("decode_bench", total=2)
    for width, height in ((640, 480), (1280, 720)):
        progress.step(f"{width}x{height} frames: {len(decoders)} decoders, {args.iterations} each")
        for content, frame in frames(width, height, payloads).items():
            for name, decoder in decoders.items():
                med, p95, found = time_decode(decoder, frame, args.iterations)
                size = f"{width}x{height}"
                print(
                    f"{name:<14}{size:<11}{content:<9}{med:>10.2f}{p95:>9.2f}"
                    f"{1000 / med:>8.0f}{found:>7}"
                )


if __name__ == "__main__":
    main()
