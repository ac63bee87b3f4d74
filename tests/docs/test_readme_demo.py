"""The README's first command is the demo; run from a fresh clone with --once it shows every
scripted verdict and leaves nothing running (issue 13, must show 1).

The setup half of the command (venv, pip install) is not repeated: the test reuses its own
interpreter, as tests/docs/test_documented_commands.py does."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from central.demo import STEPS
from central.local_processes import free_port
from tests.docs.documented import code_blocks
from tests.docs.runner import clone_env, fresh_clone

ROOT = Path(__file__).resolve().parents[2]

# label -> the verdict the scripted scan must get (api-contract "Verification")
EXPECTED = {
    "Ann shows her ticket": "SUCCESS",
    "Ann shows it again (a second phone)": "DUPLICATE",
    "Carol (flagged) shows hers": "SUCCESS",
    "Bob shows the ticket Ann sold him": "SUCCESS",
    "Ann shows the code she saved before the transfer": "TRANSFERRED",
    "someone shows a two-minute-old screenshot": "EXPIRED",
    "Ann shows her HALL-B ticket at the HALL-A gate": "WRONG_HALL",
}


def readme_first_command() -> list[str]:
    first_block = code_blocks((ROOT / "README.md").read_text())[0]
    return shlex.split(first_block.strip().split("&&")[-1])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_steps_in_order(err: str) -> None:
    """The start-up shows its steps as they happen: every one, numbered, in the script's order,
    and the scans' verdicts inside the last one."""
    lines = err.splitlines()
    found = []
    for number, name in enumerate(STEPS, start=1):
        prefix = f"demo [{number}/{len(STEPS)}] {name}"
        at = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        assert len(at) == 1, (prefix, err[-4000:])
        found.append(at[0])
    assert found == sorted(found), err[-4000:]
    verdicts = [i for i, line in enumerate(lines) if line.startswith("demo   gate: ")]
    assert len(verdicts) == len(EXPECTED) and min(verdicts) > found[-1], err[-4000:]


def test_readme_first_command_is_the_demo_and_every_scan_gets_its_verdict(tmp_path: Path) -> None:
    command = readme_first_command()
    assert command[:4] == [".venv/bin/python", "-m", "central", "demo"], command
    clone = fresh_clone(ROOT, tmp_path / "clone")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, *command[1:], "--once", "--port", str(port)],
        cwd=clone,
        env=clone_env(clone),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: whatever it started is findable
    )
    try:
        out, err = proc.communicate(timeout=300)
        left_running = group_alive(proc.pid)
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-4000:]
    assert "Traceback" not in err, err[-4000:]
    result = json.loads(out)
    got = {scan["label"]: scan["result"] for scan in result["scans"]}
    assert got == EXPECTED, err[-4000:]
    urls = result["urls"]
    assert urls["attendee_app"] == f"http://127.0.0.1:{port}/"
    assert urls["organiser_console"] == f"http://127.0.0.1:{port}/admin/"
    assert urls["gate_dashboard"].startswith("http://127.0.0.1:") and urls["gate_pin"]
    assert_steps_in_order(err)
    # nothing left running: no process of its group, central's port free again
    assert not left_running
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_demo_runs_until_ctrl_c_and_leaves_nothing_running(tmp_path: Path) -> None:
    """Without --once the demo prints where to look and waits; Ctrl-C at the terminal (SIGINT to
    the whole foreground group) ends it and everything it started."""
    port = free_port()
    out_path = tmp_path / "out.txt"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "central", "demo", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C stops it" not in out_path.read_text():
            assert proc.poll() is None, out_path.read_text()[-4000:]
            assert time.monotonic() < deadline, out_path.read_text()[-4000:]
            time.sleep(0.2)
        text = out_path.read_text()
        assert f"http://127.0.0.1:{port}/admin/" in text and "PIN 2468" in text
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out_path.read_text()[-4000:]
        left_running = group_alive(proc.pid)
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert not left_running
    assert "Traceback" not in out_path.read_text()
