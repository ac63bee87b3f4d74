"""Decode rate on the hard-frame corpus (hardware/hard_frames.py: real ticket codes through glare,
perspective, curved paper, low contrast, phone-screen moiré and dark mode, motion blur), BEFORE
(the fast zxing pass alone) and AFTER (with the hard-frame second pass), per distortion, in the
same run on the same frames; then empty 640x480 frames per second before and after.

Run: .venv/bin/python bench/hard_frames.py [--quick] [--per N] [--seed S]

Each corpus frame is judged alone (the "previous frame had a code" hint is reset, and the share
limit is off so every frame gets its full budget): the rate is what one frame can give. The
empty-frame rates use the decoder exactly as the gate runs it (share limit on)."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict

import numpy as np

from central.progress import Progress
from hardware.decode import ZxingDecoder
from hardware.hard_frames import DISTORTIONS, HEIGHT, WIDTH, _camera, _scene, corpus
from hardware.second_pass import DEFAULT_BUDGET_MS, HardFrameDecoder


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


# what the run is doing, on stderr as it happens; the figures go to stdout
progress = Progress("hard_frames", total=2)


def decode_rates(per: int, seed: int, budget_ms: float) -> None:
    progress.step(f"decoding {per} frames per distortion ({len(DISTORTIONS)} distortions)")
    decoded = progress.ticker("frames", per * len(DISTORTIONS))
    fast = ZxingDecoder()
    hard = HardFrameDecoder(ZxingDecoder(), budget_ms=budget_ms, max_share=None)
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    ms: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    wrong = 0
    for item in corpus(per, seed):
        started = time.perf_counter()
        before = [c.text for c in fast.decode(item.frame)]
        ms[item.distortion][0].append((time.perf_counter() - started) * 1000)
        hard.forget()
        started = time.perf_counter()
        after = [c.text for c in hard.decode(item.frame)]
        ms[item.distortion][1].append((time.perf_counter() - started) * 1000)
        wrong += sum(1 for text in before + after if text != item.payload)
        row = hits[item.distortion]
        row[0] += 1
        row[1] += item.payload in before
        row[2] += item.payload in after
        decoded()
    print(f"hard-frame corpus: {per} frames per distortion, seed {seed}, budget {budget_ms} ms")
    print(
        f"{'distortion':<16} {'frames':>6} {'before':>12} {'after':>12}"
        f" {'ms before':>10} {'ms after':>9} {'p95 after':>10}"
    )
    total = [0, 0, 0]
    for name in DISTORTIONS:
        n, b, a = hits[name]
        total = [total[0] + n, total[1] + b, total[2] + a]
        before_ms, after_ms = ms[name]
        print(
            f"{name:<16} {n:>6} {b:>4} ({b / n:>4.0%}) {a:>4} ({a / n:>4.0%})"
            f" {statistics.mean(before_ms):>10.1f} {statistics.mean(after_ms):>9.1f}"
            f" {_p95(after_ms):>10.1f}"
        )
    n, b, a = total
    print(f"{'all':<16} {n:>6} {b:>4} ({b / n:>4.0%}) {a:>4} ({a / n:>4.0%})")
    print(f"second pass: {hard.stats}")
    print(f"codes decoded with a wrong text: {wrong}")


def empty_rates(iterations: int) -> None:
    progress.step(f"empty frames: {iterations} each, two kinds, two decoders")
    flat = np.full((HEIGHT, WIDTH), 200, dtype=np.uint8)
    scenes = [_camera(_scene(np.random.default_rng(i)), np.random.default_rng(i)) for i in range(8)]
    print(f"\nempty {WIDTH}x{HEIGHT} frames, {iterations} each (frames/s, one thread)")
    for label, frames in (("flat field", [flat]), ("textured scene", scenes)):
        rates = []
        for decoder in (ZxingDecoder(), HardFrameDecoder(ZxingDecoder())):
            decoder.decode(frames[0])  # warm-up
            started = time.perf_counter()
            for i in range(iterations):
                decoder.decode(frames[i % len(frames)])
            rates.append(iterations / (time.perf_counter() - started))
        print(
            f"{label:<16} before {rates[0]:>7.0f}/s  after {rates[1]:>7.0f}/s"
            f"  after/before {rates[1] / rates[0]:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 frames per distortion")
    parser.add_argument("--per", type=int, default=40, help="frames per distortion")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS)
    parser.add_argument("--iterations", type=int, default=1000, help="empty frames per kind")
    args = parser.parse_args()
    per, iterations = (10, 200) if args.quick else (args.per, args.iterations)
    print(
        f"python {platform.python_version()} on {platform.machine()},"
        f" {os.cpu_count()} CPUs, {platform.platform()}"
    )
    decode_rates(per, args.seed, args.budget_ms)
    empty_rates(iterations)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
