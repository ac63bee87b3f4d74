"""Ticket token throughput: sign/s, verify/s and µs per verify (base45 + Ed25519 + time rules),
for central's TR1 codes and the phone-made TR2 codes (two signatures: Ed25519 + ECDSA P-256),
in the same run, with the ratio.

Run: .venv/bin/python bench/token_bench.py [iterations]   (default 10000)
     .venv/bin/python bench/token_bench.py --quick          (200 iterations: a check that it runs)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

import base45  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from central.progress import Progress  # noqa: E402
from proto.ticket_token import (  # noqa: E402
    PREFIX,
    ed25519_holds,
    issue_device_cert,
    sign_device_code,
    sign_token,
    verify_token,
)


def main(iterations: int) -> None:
    key = Ed25519PrivateKey.generate()
    keys = {1: key.public_key()}
    seats = [str(uuid.uuid4()) for _ in range(64)]
    now = int(time.time())
    # what the run is doing, on stderr as it happens; the figures go to stdout
    progress = Progress("token_bench", total=5)

    progress.step(f"TR1: signing and verifying {iterations:,} codes, then a forged one")
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

    # TR2: 64 phones, one certificate each; a code a second per phone
    progress.step(f"TR2: 64 phone certificates, {iterations:,} phone-signed codes")
    phones = [ec.generate_private_key(ec.SECP256R1()) for _ in range(64)]
    certs = [
        issue_device_cert(
            seats[i],
            1,
            now,
            1,
            1,
            now + 86400,
            p.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint),
            key,
        )
        for i, p in enumerate(phones)
    ]
    start = time.perf_counter()
    codes = [
        sign_device_code(certs[i % 64], now - i % 30, phones[i % 64]) for i in range(iterations)
    ]
    tr2_sign_s = time.perf_counter() - start
    # Verify TR1 and TR2 in alternating rounds so both see the same machine (a shared one is
    # noisy); the figure per kind is the median round.
    rounds = 10
    per_round = max(1, iterations // rounds)
    progress.step(f"TR1 and TR2 verified in {rounds} alternating rounds")
    tr1_us: list[float] = []
    tr2_us: list[float] = []
    for r in range(rounds):
        for batch, out in ((tokens, tr1_us), (codes, tr2_us)):
            chunk = batch[r * per_round : (r + 1) * per_round] or batch[:per_round]
            start = time.perf_counter()
            for text in chunk:
                if verify_token(text, keys, now).result != "OK":
                    raise SystemExit("a fresh code did not verify")
            out.append((time.perf_counter() - start) / len(chunk) * 1e6)
    tr1, tr2 = statistics.median(tr1_us), statistics.median(tr2_us)
    print(
        f"TR2 phone sign:   {iterations / tr2_sign_s:10.0f} /s  "
        f"{tr2_sign_s / iterations * 1e6:7.1f} µs each"
    )
    print(f"alternating rounds ({rounds}): TR1 verify {tr1:7.1f} µs, TR2 verify {tr2:7.1f} µs")
    print(f"TR2 verify / TR1 verify: {tr2 / tr1:.2f}x (same run)")
    progress.step("Ed25519 alone: OpenSSL (cryptography) and libsodium (PyNaCl), alternating")
    openssl, sodium = compare_ed25519(key, rounds, per_round)
    print(
        f"Ed25519 check: OpenSSL {openssl:6.1f} µs, libsodium {sodium:6.1f} µs "
        f"(ed25519_holds, what verify_token uses): {sodium / openssl:.2f}x (same run)"
    )
    progress.step("done")


def compare_ed25519(key: Ed25519PrivateKey, rounds: int, per_round: int) -> tuple[float, float]:
    """Median µs per check of one genuine signature through each library, in alternating
    rounds so both see the same machine."""
    message = bytes(range(26))  # a TR1 body's length
    signature = key.sign(message)
    public = key.public_key()

    def with_openssl() -> None:
        public.verify(signature, message)

    def with_libsodium() -> None:
        if not ed25519_holds(public, signature, message):
            raise SystemExit("libsodium refused a genuine signature")

    times: dict[str, list[float]] = {"openssl": [], "libsodium": []}
    for _ in range(rounds):
        for name, check in (("openssl", with_openssl), ("libsodium", with_libsodium)):
            start = time.perf_counter()
            for _ in range(per_round):
                check()
            times[name].append((time.perf_counter() - start) / per_round * 1e6)
    return statistics.median(times["openssl"]), statistics.median(times["libsodium"])


def parse_iterations(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="token_bench.py")
    parser.add_argument("iterations", nargs="?", type=int, default=10_000, help="codes (10000)")
    parser.add_argument("--quick", action="store_true", help="200 codes: a check that it runs")
    args = parser.parse_args(argv)
    return 200 if args.quick else args.iterations


if __name__ == "__main__":
    main(parse_iterations(sys.argv[1:]))
