"""`python -m gate_agent decode IMAGE…`: decode QR codes in image files, one JSON line per image.

Lets an operator check a camera still or a printed ticket with the same decoder the gate uses."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2

from hardware.decode import DECODERS, DecoderError, make_decoder

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gate_agent decode",
        description="Decode QR codes in image files; prints one JSON line per image.",
    )
    parser.add_argument(
        "--decoder", choices=DECODERS, default="zxing", help="QR decoder (default: zxing)"
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to decode")
    return parser


def main(argv: list[str]) -> int:
    """Exit 0 when every image could be read (found codes or not), 1 when any could not,
    2 for bad arguments or a decoder that cannot start."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad arguments
        return int(exc.code or 0)
    try:
        decoder = make_decoder(args.decoder)
    except DecoderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = False
    for path in args.images:
        line: dict[str, object] = {"path": path}
        # Checked first so a missing file gets a clear reason and no OpenCV warning on stderr.
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE) if Path(path).is_file() else None
        if image is None:
            failed = True
            line["error"] = "not a readable image" if Path(path).is_file() else "no such file"
        else:
            start = time.perf_counter()
            codes = decoder.decode(image)
            elapsed_ms = (time.perf_counter() - start) * 1000
            line["codes"] = [
                {"text": c.text, "corners": [list(p) for p in c.corners]} for c in codes
            ]
            line["ms"] = round(elapsed_ms, 3)
        print(json.dumps(line), flush=True)
    return 1 if failed else 0
