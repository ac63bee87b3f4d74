"""One line of help per gate setting, for `python -m gate_agent run --help`: what it does; the
default and the TR_GATE_* variable are added from GateConfig itself, so they cannot drift."""

from __future__ import annotations

from dataclasses import MISSING, fields

from gate_agent.config import ENV_PREFIX, GateConfig

CAMERA_SPECS = """camera specs (--camera):
  v4l2:INDEX_OR_PATH  a V4L2 camera: v4l2:0 or v4l2:/dev/video2
  picamera2           the Raspberry Pi camera (python3-picamera2 from Raspberry Pi OS)
  file:PATH           a video or a still image, e.g. file:ticket.png
  dir:PATH            each new image file put in the folder is shown once, as if held up
                      (write it under a name like x.png.part, then rename it to x.png)
  synthetic[:TEXT]    rendered test tickets, no hardware"""

GATE_HELP: dict[str, str] = {
    "central": "central's public URL",
    "device_token": "the gate's token from `python -m central admin add-gate` (required)",
    "camera": "where frames come from; see camera specs below",
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
