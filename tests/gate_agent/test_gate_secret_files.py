"""The gate's secrets (PIN, device token) need not be on the command line, where `ps` shows them
to every account: they come from a file (`--pin-file`, TR_GATE_PIN_FILE, e.g. a systemd
credential) or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate_agent.config import ConfigError, load_config


def test_secrets_from_files_named_by_flag_or_environment(tmp_path: Path) -> None:
    pin_file, token_file = tmp_path / "pin", tmp_path / "token"
    pin_file.write_text("482913\n")
    token_file.write_text("device-secret\n")
    by_flag = load_config(
        {"pin_file": str(pin_file), "device_token_file": str(token_file)}, environ={}
    )
    assert (by_flag.pin, by_flag.device_token) == ("482913", "device-secret")
    by_env = load_config(
        {},
        environ={"TR_GATE_PIN_FILE": str(pin_file), "TR_GATE_DEVICE_TOKEN_FILE": str(token_file)},
    )
    assert (by_env.pin, by_env.device_token) == ("482913", "device-secret")
    # The file's value is validated like any other source.
    pin_file.write_text("12")
    with pytest.raises(ConfigError, match="pin"):
        load_config({"pin_file": str(pin_file), "device_token": "t"}, environ={})
    with pytest.raises(ConfigError, match="pin_file"):
        load_config({"pin_file": str(tmp_path / "missing"), "device_token": "t"}, environ={})
