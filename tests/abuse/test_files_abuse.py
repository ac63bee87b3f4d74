"""Another account on the machine: the data central keeps on disk (password hashes, e-mails,
phones, the ledger, secrets) is for the service's own user only — directories 0700, files 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.abuse.conftest import Central
from tests.abuse.table import Ledger


def _loose(paths: list[Path], allowed: int) -> list[str]:
    """Paths whose mode grants more than `allowed` (group or other bits)."""
    return [
        f"{p.name} {stat.S_IMODE(p.stat().st_mode):o}"
        for p in paths
        if stat.S_IMODE(p.stat().st_mode) & ~allowed
    ]


def test_central_data_files_are_private(central: Central, ledger: Ledger) -> None:
    data = central.data_dir
    files = [p for p in data.rglob("*") if p.is_file()]
    dirs = [data, *(p for p in data.rglob("*") if p.is_dir())]
    assert any(p.suffix == ".db" for p in files)
    loose = _loose(dirs, 0o700) + _loose(files, 0o600)
    ledger.attempt(
        "files",
        f"another local account reads central's data dir ({len(files)} files)",
        attempts=len(files) + len(dirs),
        expected="dirs 0700, files 0600",
        outcome="dirs 0700, files 0600" if not loose else ", ".join(loose),
    )
