"""`serve` started at a terminal prints a short banner: the addresses, the data directory, where
one-time codes go and how to make an admin; started by a service manager or a pipe it does not
(issue 13)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from central.local_processes import ROOT, CentralProcess, free_port


def test_serve_at_a_terminal_prints_where_to_look(tmp_path: Path) -> None:
    port = free_port()
    master, slave = pty.openpty()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "central",
            "serve",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--otp-delivery",
            f"file:{tmp_path / 'otp.jsonl'}",
        ],  # fmt: skip
        cwd=ROOT,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 90
        while b"Ctrl-C stops it." not in seen and time.monotonic() < deadline:
            assert proc.poll() is None, seen.decode(errors="replace")
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 4096)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        os.close(master)
    text = seen.decode(errors="replace")
    url = f"http://127.0.0.1:{port}"
    assert f"attendee app      {url}/" in text, text
    assert f"organiser console {url}/admin/" in text
    assert f"data              {data.resolve()}" in text
    assert f"one-time codes    appended to {tmp_path / 'otp.jsonl'}" in text
    assert f"--data-dir {data.resolve()} create-user" in text and "--role admin" in text


def test_serve_without_a_terminal_prints_no_banner(tmp_path: Path) -> None:
    central = CentralProcess(tmp_path / "data", log_path=tmp_path / "serve.log").start()
    central.stop()
    assert "TicketRemaster central is serving" not in (tmp_path / "serve.log").read_text()
