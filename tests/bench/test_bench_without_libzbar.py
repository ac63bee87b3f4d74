"""A decoder that cannot load is reported and skipped by the benches, never a traceback (issue 18):
pyzbar without the system's libzbar0 raises ImportError("Unable to find zbar shared library") on
import; a stand-in package on PYTHONPATH raises exactly that, whatever this machine has installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MISSING = "Unable to find zbar shared library"


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shim = tmp_path / "shim" / "pyzbar"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text("")
    (shim / "pyzbar.py").write_text(f"raise ImportError({MISSING!r})\n")
    env = {**os.environ, "PYTHONPATH": f"{shim.parent}{os.pathsep}{ROOT}"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_decode_bench_measures_zxing_and_says_why_pyzbar_was_skipped(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "bench/decode_bench.py", "--quick")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    assert f"skipped decoder pyzbar: pyzbar cannot load the zbar library ({MISSING})" in output
    rows = [line.split() for line in done.stdout.splitlines() if not line.startswith("#")][1:]
    assert {row[0] for row in rows} == {"zxing", "zxing+invert"}
    assert len(rows) == 12  # 2 decoders x 2 sizes x empty/TR1/TR2
    assert {row[2] for row in rows} == {"empty", "TR1", "TR2"}


def test_gate_pipeline_measures_zxing_and_says_why_pyzbar_was_skipped(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "bench/gate_pipeline.py", "--quick", "--skip-online")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"skipped decoder pyzbar: pyzbar cannot load the zbar library ({MISSING})" in done.stderr
    result = json.loads(done.stdout)
    assert MISSING in result["skipped_decoders"]["pyzbar"]
    for part in ("empty_frames_per_s", "offline", "preview"):
        assert list(result[part]) == ["zxing 640x480"], (part, result[part])
    assert result["offline"]["zxing 640x480"]["n"] == 3
