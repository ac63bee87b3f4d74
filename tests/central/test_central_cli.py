"""`python -m central` as a user runs it: a bad setting stops the start with one line naming it;
admin commands print one JSON object, or one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def central(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TR_")}
    return subprocess.run(
        [sys.executable, "-m", "central", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args,env,named",
    [
        (["serve", "--hold-ttl", "abc"], {}, "--hold-ttl"),
        (["serve", "--hold-ttl", "0"], {}, "--hold-ttl"),
        (["serve"], {"TR_HOLD_TTL": "soon"}, "TR_HOLD_TTL"),
        (["serve", "--port", "70000"], {}, "--port"),
        (["serve", "--database-url", "mysql://x/y"], {}, "--database-url"),
        (["serve", "--amqp-url", "http://broker"], {}, "--amqp-url"),
        (["serve", "--otp-delivery", "carrier-pigeon"], {}, "--otp-delivery"),
        (["serve", "--service", "billing"], {}, "--service"),
        (["serve", "--tls-cert", "/nonexistent.pem"], {}, "--tls-cert"),
        (["serve", "--service", "orchestrator"], {}, "--users-url"),
    ],
)
def test_bad_setting_stops_with_one_line(
    args: list[str], env: dict[str, str], named: str, tmp_path: Path
) -> None:
    done = central(*args, "--data-dir", str(tmp_path), env=env)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and named in lines[0]


def test_admin_commands_print_json_and_fail_with_one_line(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    made = central(
        "admin",
        *data,
        "create-user",
        "--email",
        "ops@example.com",
        "--password",
        "a long password",
        "--credits",
        "40",
    )
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    assert user["email"] == "ops@example.com" and user["credit_balance"] == 40

    event = json.loads(
        central(
            "admin",
            *data,
            "create-event",
            "--name",
            "Gala",
            "--hall",
            "HALL-A",
            "--rows",
            "2",
            "--seats-per-row",
            "3",
            "--price",
            "50",
        ).stdout
    )
    assert len(event["seat_ids"]) == 6
    gate = json.loads(
        central("admin", *data, "add-gate", "--hall", "HALL-A", "--name", "North 1").stdout
    )
    assert gate["hall_id"] == "HALL-A" and len(gate["device_token"]) >= 32
    grant = json.loads(
        central(
            "admin", *data, "grant-credits", "--user-id", user["user_id"], "--amount", "10"
        ).stdout
    )
    assert grant == {"user_id": user["user_id"], "credit_balance": 50}

    for bad in (
        ["create-user", "--email", "ops@example.com", "--password", "a long password"],
        ["grant-credits", "--user-id", "00000000-0000-4000-8000-000000000000", "--amount", "5"],
        [
            "create-event",
            "--name",
            "X",
            "--hall",
            "bad hall",
            "--rows",
            "1",
            "--seats-per-row",
            "1",
            "--price",
            "1",
        ],
    ):
        done = central("admin", *data, *bad)
        assert done.returncode != 0
        assert done.stdout == ""
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_empty_signing_keys_dir_stops_with_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.mkdir()
    done = central(
        "serve", "--data-dir", str(tmp_path / "d"), "--port", "0", "--signing-keys-dir", str(empty)
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(lines) == 1 and "--signing-keys-dir" in lines[0], done.stderr


def test_create_event_with_many_seats_reports_its_progress(tmp_path: Path) -> None:
    """5,000 seats: each step on stderr as it happens, numbered, with the seats counted; stdout
    stays the one JSON object."""
    done = central(
        "admin", "--data-dir", str(tmp_path / "d"), "create-event", "--name", "Big Night",
        "--hall", "HALL-A", "--rows", "100", "--seats-per-row", "50", "--price", "10",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    event = json.loads(done.stdout)
    assert len(event["seat_ids"]) == 5000
    lines = done.stderr.splitlines()
    steps = [
        re.sub(r" \(\d+\.\d s\)$", "", line) for line in lines if line.startswith("create-event [")
    ]
    assert steps == [
        "create-event [1/6] starting central's services",
        "create-event [2/6] services started",
        "create-event [3/6] 5,000 seats planned (100 rows of 50)",
        f"create-event [4/6] event {event['event_id']} recorded",
        "create-event [5/6] creating 5,000 seats in one transaction (all or none)",
        "create-event [6/6] 5,000 seats created",
    ], done.stderr
    # the count comes between "creating" and "created"
    at = [i for i, line in enumerate(lines) if line.startswith("create-event [")]
    assert at[4] < lines.index("create-event   seats: 5,000 of 5,000 (100%)") < at[5]
