"""A new user's first minutes: the README's server command, run in a fresh clone, serves the API
with the sample event; register → code from the file backend → an expired code is refused and
resent → verify → login → balance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from central_process import ROOT, free_port

from tests.docs.documented import code_blocks


def readme_serve_command() -> str:
    """The README's "Run the server alone" command (its first command is the demo)."""
    blocks = code_blocks((ROOT / "README.md").read_text())  # command blocks, not ```text output
    return next(b.strip() for b in blocks if "central serve --seed-sample" in b)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the README command exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not serving after {timeout} s:\n{log.read_text()[-4000:]}")


def test_readme_first_command_serves_a_new_user(tmp_path: Path) -> None:
    serve_command = readme_serve_command()
    assert serve_command.startswith("python3 -m venv .venv && ")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    port = free_port()
    otp_file = tmp_path / "otp.jsonl"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TR_", "VIRTUAL_ENV"))},
        "TR_PORT": str(port),
        "TR_DATA_DIR": str(tmp_path / "data"),
        "TR_OTP_DELIVERY": f"file:{otp_file}",
        "TR_OTP_TTL": "2",
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", serve_command],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, timeout=600)
        events = httpx.get(url + "/api/events").json()["data"]
        assert len(events) == 1 and events[0]["available_seats"] == 20

        email = "newcomer@example.com"
        password = "a long password"
        r = httpx.post(url + "/api/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        user_id = r.json()["data"]["user_id"]
        first_code = json.loads(otp_file.read_text().splitlines()[-1])["code"]

        time.sleep(2.5)  # the code lives 2 s here (TR_OTP_TTL)
        r = httpx.post(
            url + "/api/auth/verify-registration", json={"user_id": user_id, "otp_code": first_code}
        )
        assert (r.status_code, r.json()["error_code"]) == (410, "OTP_EXPIRED")
        r = httpx.post(
            url + "/api/otp/resend", json={"context": "registration", "reference_id": user_id}
        )
        assert r.status_code == 200, r.text
        new_code = json.loads(otp_file.read_text().splitlines()[-1])["code"]
        r = httpx.post(
            url + "/api/auth/verify-registration", json={"user_id": user_id, "otp_code": new_code}
        )
        assert r.status_code == 200, r.text

        r = httpx.post(url + "/api/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        token = r.json()["data"]["access_token"]
        r = httpx.get(url + "/api/credits/balance", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["data"] == {"user_id": user_id, "credit_balance": 0}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
