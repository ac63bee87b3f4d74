"""`python -m central admin create-user` takes the password from a file or TR_ADMIN_PASSWORD, so
it need not appear on the command line (where `ps` shows it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.central_process import ROOT


def _admin(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "central", "admin", "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_password_from_a_file_or_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret = tmp_path / "password"
    secret.write_text("a long password from a file\n")
    done = _admin(data, "create-user", "--email", "f@example.com", "--password-file", str(secret))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["email"] == "f@example.com"
    done = _admin(
        data,
        "create-user",
        "--email",
        "e@example.com",
        env={"TR_ADMIN_PASSWORD": "a long password from env"},
    )
    assert done.returncode == 0, done.stderr
    done = _admin(data, "create-user", "--email", "n@example.com", env={"TR_ADMIN_PASSWORD": ""})
    assert done.returncode != 0 and "password" in done.stderr
