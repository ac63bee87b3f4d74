"""Issue 5 item 7 (units): `systemd-analyze verify` passes on the units once installed under a
temporary prefix with their executable in place, and fails when the executable is missing."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "systemd").glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def install(prefix: Path, *, with_python: bool = True) -> Path:
    """The units as an installer writes them: /opt/ticketremaster replaced by the prefix."""
    (prefix / "opt" / ".venv" / "bin").mkdir(parents=True)
    if with_python:
        (prefix / "opt" / ".venv" / "bin" / "python").symlink_to(sys.executable)
    units = prefix / "units"
    units.mkdir()
    for unit in UNITS:
        text = unit.read_text().replace("/opt/ticketremaster", str(prefix / "opt"))
        (units / unit.name).write_text(text)
    return units


def verify(units: Path) -> subprocess.CompletedProcess[str]:
    names = [
        f"./{u.name.replace('@.', '@inventory.')}" for u in UNITS
    ]  # a template is verified through an instance
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", *names], cwd=units, capture_output=True, text=True, timeout=60
    )


@needs_analyze
def test_units_verify_clean(tmp_path: Path) -> None:
    result = verify(install(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # not even a warning


@needs_analyze
def test_verify_fails_without_the_executable(tmp_path: Path) -> None:
    result = verify(install(tmp_path, with_python=False))
    assert result.returncode != 0
    assert "not executable" in result.stderr


def _service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(REPO / "systemd" / name)
    return parser["Service"]


def test_gate_unit_is_notify_with_watchdog_and_always_restarts() -> None:
    svc = _service("ticketremaster-gate.service")
    assert svc["Type"] == "notify"
    assert int(svc["WatchdogSec"]) > 0
    assert svc["Restart"] == "always"
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert "gate_agent run" in svc["ExecStart"]
    assert {u.name for u in UNITS} >= {
        "ticketremaster-gate.service",
        "ticketremaster-central.service",
        "ticketremaster-central@.service",
    }
