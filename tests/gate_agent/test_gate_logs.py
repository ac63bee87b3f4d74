"""What the gate's own log says (issue 13): every line names the gate, the staff page as a URL, a
missing camera reported once with what to do instead (no OpenCV warning repeated at every retry),
central being reachable again is news rather than a warning, and a stop is logged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from central.local_processes import free_port
from gate_agent.__main__ import dashboard_url
from gate_agent.sync import Connectivity

REPO = Path(__file__).resolve().parents[2]
RETRY_S = 2.0  # the pipeline's camera retry interval
WATCH_S = 2 * RETRY_S + 1.5  # long enough for two more attempts to open the camera


def test_the_log_names_the_gate_its_url_a_missing_camera_once_and_the_stop(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gate_agent",
            "run",
            "--central",
            f"http://127.0.0.1:{free_port()}",  # nothing listens: the gate runs offline
            "--device-token=trg_test",
            "--pin",
            "2468",
            "--camera",
            "v4l2:97",  # no such device
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(port),
            "--data-dir",
            str(tmp_path / "gate"),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("staff dashboard at" in line for line in lines):
            assert proc.poll() is None, lines
            assert time.monotonic() < deadline, lines
            time.sleep(0.1)
        time.sleep(WATCH_S)  # a bounded watch: a repeated warning would show in this window
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        reader.join(timeout=5)

    records = []
    for line in lines:
        assert line.startswith("{"), f"not a log record (OpenCV's own warning?): {line!r}"
        records.append(json.loads(line))
    assert {r["service"] for r in records} == {"gate"}, {r["service"] for r in records}
    messages = [r["msg"] for r in records]
    assert f"staff dashboard at http://127.0.0.1:{port}/" in messages
    camera = [r for r in records if r["msg"] == "camera unavailable; retrying"]
    assert len(camera) == 1, camera
    assert "dir:PATH, file:PATH or synthetic" in camera[0]["error"]
    assert messages[-2:] == ["gate stopping", "gate stopped"], messages[-5:]


def test_dashboard_url_for_a_wildcard_and_an_ipv6_address() -> None:
    assert dashboard_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/"
    assert dashboard_url("10.0.0.5", 80) == "http://10.0.0.5:80/"
    assert dashboard_url("fe80::1", 8080) == "http://[fe80::1]:8080/"


def test_central_reachable_is_info_and_unreachable_a_warning(caplog) -> None:
    link = Connectivity(fail_threshold=1, ok_threshold=1)
    with caplog.at_level("INFO", logger="gate_agent.sync"):
        link.record(True)
        link.record(False)
        link.record(True)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [
        ("INFO", "central reachable"),
        ("WARNING", "central unreachable: deciding from the manifest"),
        ("INFO", "central reachable"),
    ], levels
