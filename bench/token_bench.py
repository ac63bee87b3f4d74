"""Ticket token throughput: sign/s, verify/s and µs per verify (base45 + Ed25519 + time rules).

Run: .venv/bin/python bench/token_bench.py [iterations]   (default 10000)
     .venv/bin/python bench/token_bench.py --quick          (200 iterations: a check that it runs)
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

import base45  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from proto.ticket_token import PREFIX, sign_token, verify_token  # noqa: E402


def main(iterations: int) -> None:
    key = Ed25519PrivateKey.generate()
    keys = {1: key.public_key()}
    seats = [str(uuid.uuid4()) for _ in range(64)]
    now = int(time.time())

    start = time.perf_counter()
    tokens = [sign_token(seats[i % 64], i, now, 1, key) for i in range(iterations)]
    sign_s = time.perf_counter() - start

    start = time.perf_counter()
    for token in tokens:
        if verify_token(token, keys, now).result != "OK":
            raise SystemExit("a freshly signed token did not verify")
    verify_s = time.perf_counter() - start

    # a well-formed token with one signature bit flipped: the full Ed25519 cost, then INVALID
    raw = bytearray(base45.b45decode(tokens[0][len(PREFIX) :]))
    raw[-1] ^= 1
    forged = PREFIX + base45.b45encode(bytes(raw)).decode("ascii")
    start = time.perf_counter()
    for _ in range(iterations):
        if verify_token(forged, keys, now).result != "INVALID":
            raise SystemExit("a forged token was accepted")
    reject_s = time.perf_counter() - start

    print(f"iterations: {iterations}")
    print(f"sign:   {iterations / sign_s:10.0f} /s  {sign_s / iterations * 1e6:7.1f} µs each")
    print(f"verify: {iterations / verify_s:10.0f} /s  {verify_s / iterations * 1e6:7.1f} µs each")
    print(f"forged: {iterations / reject_s:10.0f} /s  {reject_s / iterations * 1e6:7.1f} µs each")


def parse_iterations(argv: list[str]) -> int:
    if argv == ["--quick"]:
        return 200
    if len(argv) > 1 or (argv and not argv[0].isdigit()):
        raise SystemExit("usage: token_bench.py [ITERATIONS | --quick]")
    return int(argv[0]) if argv else 10_000


if __name__ == "__main__":
    main(parse_iterations(sys.argv[1:]))
