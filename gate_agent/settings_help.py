"""One line of help per gate setting, for `python -m gate_agent run --help`: what it does; the
default and the TR_GATE_* variable are added from GateConfig itself, so they cannot drift."""

from __future__ import annotations

from dataclasses import MISSING, fields

from gate_agent.config import ENV_PREFIX, GateConfig

CAMERA_SPECS = """camera (--camera):
  v4l2:0 | v4l2:/dev/video2   a USB/V4L2 camera (index or device)
  picamera2                   a Raspberry Pi camera (python3-picamera2)
  file:PATH                   a video or still image, repeated like a live camera
  dir:PATH                    a folder: each new image is held in view for a moment
  synthetic[:TEXT]            a rendered test code
  none                        no camera: codes come from --scanner only
scanner (--scanner, any number, comma-separated):
  tty:/dev/ttyACM0[@BAUD]     a serial/USB-CDC scanner; one code per line (CR or LF)
  hid:/dev/input/eventN       a keyboard-wedge scanner read from its input device and grabbed
                              (needs python-evdev: pip install evdev; US key layout)
  stdin                       codes typed or piped into the agent, one per line
Scanner codes take the camera's verdict path (same checks, outbox, light and relay); a second
scan of an admitted ticket is refused as DUPLICATE. Every setting may also come from the TOML
file (--config) or a TR_GATE_<NAME> variable."""

GATE_HELP: dict[str, str] = {
    "central": "central's public URL",
    "device_token": "the gate's token from `python -m central admin add-gate` (required)",
    "camera": "where frames come from; see camera specs below",
    "scanner": "barcode scanner spec(s), comma-separated; see scanner specs below",
    "second_pass_ms": "milliseconds the hard-frame second pass may spend on a frame (0: off)",
    "camera_width": "frame width in pixels",
    "camera_height": "frame height in pixels",
    "decoder": "QR decoder: zxing or pyzbar (pyzbar needs apt-get install libzbar0)",
    "indicator": "how verdicts are shown: console (a line each), fake (nothing), or "
    "gpio[:green=17,red=27,buzzer=22,relay=23,pulse=0.5,hold=1.5] (lights, buzzer, turnstile)",
    "data_dir": "the gate's outbox, manifest and sessions",
    "dashboard_host": "address of the staff dashboard",
    "dashboard_port": "port of the staff dashboard",
    "pin": "PIN of the staff dashboard, 4 to 12 digits (required)",
    "ca_file": "CA certificate to trust for an HTTPS central",
    "verify_timeout_s": "seconds to wait for central's verdict before deciding offline",
    "sync_interval_s": "seconds between manifest syncs",
    "upload_interval_s": "seconds between uploads of offline decisions",
    "backoff_max_s": "longest wait between retries while central is unreachable",
    "dedup_s": "seconds a code must leave the view before it is judged again",
    "stall_s": "seconds without a frame before the pipeline counts as stalled",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
}


def flag_help(name: str) -> str:
    field = next(f for f in fields(GateConfig) if f.name == name)
    default: object = field.default
    if default is MISSING and field.default_factory is not MISSING:
        default = field.default_factory()
    shown = "" if default in (MISSING, None, "") else f"default: {default}; "
    return f"{GATE_HELP.get(name, '')} ({shown}env {ENV_PREFIX}{name.upper()})".strip()
