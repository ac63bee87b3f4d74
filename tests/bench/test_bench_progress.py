"""A bench says what it is doing while it runs (on stderr, each step as it begins) and keeps its
figures alone on stdout, where a script reads them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_token_bench_prints_its_steps_on_stderr_and_figures_on_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "bench/token_bench.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    steps = re.findall(r"^token_bench \[(\d)/5\] ", done.stderr, flags=re.M)
    assert steps == ["1", "2", "3", "4", "5"], done.stderr
    assert "token_bench" not in done.stdout
    assert re.search(r"^verify: +\d+ /s", done.stdout, flags=re.M), done.stdout
    # the two Ed25519 libraries side by side, with their ratio
    assert re.search(r"^Ed25519 check: OpenSSL .* \d+\.\d\dx \(same run\)$", done.stdout, re.M)
