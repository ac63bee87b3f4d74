"""`python -m gate_agent decode`: one JSON line per image, exit 1 when any image was unreadable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = "import sys; from gate_agent.decode_cmd import main; sys.exit(main(sys.argv[1:]))"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("decoder", ["zxing", "pyzbar"])
def test_prints_codes_per_image_and_exits_zero(tmp_path, payloads, render, decoder):
    ticket = tmp_path / "ticket.png"
    empty = tmp_path / "empty.jpg"
    cv2.imwrite(str(ticket), cv2.cvtColor(render(payloads(1)), cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(empty), np.full((120, 160), 200, np.uint8))
    proc = run("--decoder", decoder, str(ticket), str(empty))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(ticket), str(empty)]
    first, second = lines
    assert set(first) == {"path", "codes", "ms"}
    assert [c["text"] for c in first["codes"]] == [payloads(1)]
    corners = first["codes"][0]["corners"]
    assert len(corners) == 4 and all(
        len(p) == 2 and all(isinstance(v, int) for v in p) for p in corners
    )
    assert isinstance(first["ms"], float) and first["ms"] >= 0
    assert second["codes"] == []


def test_unreadable_files_get_an_error_line_and_exit_one(tmp_path, payload, render):
    ticket = tmp_path / "ticket.png"
    cv2.imwrite(str(ticket), render(payload))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    missing = tmp_path / "missing.png"
    proc = run(str(missing), str(ticket), str(junk))
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0] == {"path": str(missing), "error": "no such file"}
    assert [c["text"] for c in lines[1]["codes"]] == [payload]  # later images still decoded
    assert lines[2] == {"path": str(junk), "error": "not a readable image"}


def test_bad_arguments_exit_two():
    assert run().returncode == 2
    proc = run("--decoder", "opencv", "x.png")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    assert proc.stdout == ""


def test_help_exits_zero():
    proc = run("--help")
    assert proc.returncode == 0
    assert "python -m gate_agent decode" in proc.stdout
