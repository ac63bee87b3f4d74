"""The gate agent's one typed config: defaults < TOML file < TR_GATE_* environment < flags.

Every value is checked at start; a bad one raises ConfigError whose message is one line naming the
setting and where it came from, so `run` can print it and stop before touching any hardware."""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hardware.decode import DECODERS
from hardware.scanners import ScannerError, open_scanner

logger = logging.getLogger(__name__)

ENV_PREFIX = "TR_GATE_"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


@dataclass
class GateConfig:
    central: str = "http://127.0.0.1:8000"
    device_token: str = ""
    camera: str = "v4l2:0"
    # barcode scanners beside (or, with camera "none", instead of) the camera: comma-separated
    # tty:/dev/ttyACM0[@BAUD], hid:/dev/input/eventN, stdin
    scanner: str = ""
    camera_width: int = 640
    camera_height: int = 480
    decoder: str = "zxing"
    # time the hard-frame second pass may spend on a frame that looks like it holds a code the
    # fast pass could not read (glare, moiré, a phone in dark mode …); 0 turns it off
    second_pass_ms: float = 40.0
    indicator: str = "console"
    data_dir: Path = field(default_factory=lambda: Path("gate-data"))
    dashboard_host: str = "0.0.0.0"
    dashboard_port: int = 8080
    pin: str = ""
    ca_file: Path | None = None
    # A lane admits a person every 2-3 s: an online answer slower than this is worse than deciding
    # offline, so the scan falls back at once (pretix uses its auto-offline threshold the same way).
    verify_timeout_s: float = 0.8
    sync_interval_s: float = 5.0
    upload_interval_s: float = 1.0
    backoff_max_s: float = 4.0
    # A code must leave the view this long before it is judged again.
    dedup_s: float = 2.0
    # Without a decoded frame or camera retry for this long the pipeline counts as stalled.
    stall_s: float = 5.0
    log_level: str = "INFO"

    def dashboard_secure(self) -> bool:
        return False  # the dashboard serves plain HTTP on the venue LAN; Secure needs HTTPS


def _positive_float(name: str) -> Callable[[Any], float]:
    def conv(value: Any) -> float:
        number = float(value)
        if not number > 0 or number != number:
            raise ValueError("must be a number > 0")
        return number

    return conv


def _port(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a port number")
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError("must be a port number 0..65535")
    return number


def _budget_ms(value: Any) -> float:
    number = float(value)
    if not 0 <= number <= 1000 or number != number:
        raise ValueError("must be a number of milliseconds 0..1000 (0: off)")
    return number


def _pixels(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a positive integer")
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return text


def _decoder(value: Any) -> str:
    if value not in DECODERS:
        raise ValueError(f"must be one of {', '.join(DECODERS)}")
    return str(value)


def _pin(value: Any) -> str:
    text = str(value)
    if not (text.isdigit() and 4 <= len(text) <= 12):
        raise ValueError("must be 4 to 12 digits")
    return text


def _nonempty(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _scanner(value: Any) -> str:
    text = str(value).strip()
    for spec in filter(None, (part.strip() for part in text.split(","))):
        try:
            open_scanner(spec)
        except ScannerError as exc:
            raise ValueError(str(exc)) from None
    return text


def _ca_file(value: Any) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value))
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _level(value: Any) -> str:
    text = str(value).upper()
    if text not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return text


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "central": _url,
    "device_token": _nonempty,
    "camera": _nonempty,
    "scanner": _scanner,
    "camera_width": _pixels,
    "camera_height": _pixels,
    "decoder": _decoder,
    "second_pass_ms": _budget_ms,
    "indicator": _nonempty,
    "data_dir": lambda v: Path(_nonempty(v)),
    "dashboard_host": _nonempty,
    "dashboard_port": _port,
    "pin": _pin,
    "ca_file": _ca_file,
    "verify_timeout_s": _positive_float("verify_timeout_s"),
    "sync_interval_s": _positive_float("sync_interval_s"),
    "upload_interval_s": _positive_float("upload_interval_s"),
    "backoff_max_s": _positive_float("backoff_max_s"),
    "dedup_s": _positive_float("dedup_s"),
    "stall_s": _positive_float("stall_s"),
    "log_level": _level,
}
NAMES = tuple(f.name for f in fields(GateConfig))
REQUIRED = ("device_token", "pin")
# Secrets may come from a file (`--pin-file`, TR_GATE_PIN_FILE, `pin_file` in the config file),
# e.g. a systemd credential: on the command line `ps` shows them to every account.
SECRETS = ("device_token", "pin")
SECRET_FILES = tuple(f"{name}_file" for name in SECRETS)


def _read_secret(name: str, path: Any, origin: str) -> str:
    try:
        return Path(str(path)).read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"{name}_file ({origin}): cannot read {path!r} ({exc.strerror})"
        ) from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_config(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> GateConfig:
    """Merge the sources and validate. Flags whose value is None count as not given."""
    env = os.environ if environ is None else environ
    raw: dict[str, tuple[Any, str]] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            table = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None
        for key, value in table.items():
            if key in SECRET_FILES:
                name = key.removesuffix("_file")
                raw[name] = (_read_secret(name, value, f"{key} in {path}"), f"{key} in {path}")
                continue
            if key not in _CONVERTERS:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            raw[key] = (value, f"{key} in {path}")
    for name in NAMES:
        var = ENV_PREFIX + name.upper()
        if var in env:
            raw[name] = (env[var], var)
        file_var = f"{var}_FILE"
        if name in SECRETS and env.get(file_var):
            raw[name] = (_read_secret(name, env[file_var], file_var), file_var)
    for name, value in (flags or {}).items():
        if value is not None:
            if name in SECRET_FILES:
                secret = name.removesuffix("_file")
                raw[secret] = (_read_secret(secret, value, _flag(name)), _flag(name))
                continue
            if name not in _CONVERTERS:
                raise ConfigError(f"unknown setting {name!r}")
            raw[name] = (value, _flag(name))
    config = GateConfig()
    for name, (value, origin) in raw.items():
        try:
            setattr(config, name, _CONVERTERS[name](value))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} ({origin}): {exc} (got {value!r})") from None
    for name in REQUIRED:
        if not getattr(config, name):
            raise ConfigError(
                f"{name}: required (give {_flag(name)}, {ENV_PREFIX}{name.upper()}"
                f" or {name} in the config file)"
            )
    if config.ca_file is not None and not config.central.startswith("https://"):
        raise ConfigError(f"ca_file: pins a CA for HTTPS but central is {config.central}")
    return config
