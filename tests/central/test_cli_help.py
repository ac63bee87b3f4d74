"""Every option of every command has a line of help; settings also name their default and their
environment variable; `gate_agent run --help` lists the camera specs (issue 13)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from central.__main__ import build_parser
from central.config import ENV_SETTINGS
from gate_agent import decode_cmd
from gate_agent.__main__ import _run_parser
from gate_agent.config import NAMES


def all_parsers() -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        found[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(f"{name} {sub_name}", sub)

    walk("python -m central", build_parser())
    walk("python -m gate_agent run", _run_parser())
    walk("python -m gate_agent decode", decode_cmd._parser())
    return found


def options_without_help(parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    missing = []
    for name, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            text = (action.help or "").strip()
            if not text or text == argparse.SUPPRESS or text.startswith("("):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_of_every_command_has_help() -> None:
    assert len(all_parsers()) >= 8  # central, serve, demo, admin + 4 commands, gate run, decode
    assert options_without_help(all_parsers()) == []


def test_settings_name_their_default_and_variable() -> None:
    serve = all_parsers()["python -m central serve"]
    helps = {a.dest: a.help or "" for a in serve._actions}
    for attr, _flag, _kind in ENV_SETTINGS:
        assert f"env TR_{attr.upper()})" in helps[attr], (attr, helps[attr])
    assert "default: 300;" in helps["hold_ttl"]
    gate = all_parsers()["python -m gate_agent run"]
    gate_helps = {a.dest: a.help or "" for a in gate._actions}
    for name in NAMES:
        assert f"env TR_GATE_{name.upper()})" in gate_helps[name], (name, gate_helps[name])
    assert "default: 8080;" in gate_helps["dashboard_port"]


def test_the_check_notices_an_option_without_help() -> None:
    parsers = all_parsers()
    parsers["python -m central serve"].add_argument("--undocumented")
    parsers["python -m central serve"].add_argument("--half", help="(default: 1; env TR_HALF)")
    assert options_without_help(parsers) == [
        "python -m central serve --undocumented",
        "python -m central serve --half",
    ]


def test_gate_run_help_lists_the_camera_specs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gate_agent", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for spec in ("v4l2:", "picamera2", "file:PATH", "dir:PATH", "synthetic"):
        assert spec in out, spec
