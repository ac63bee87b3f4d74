"""`python -m gate_agent run …` (the appliance) and `python -m gate_agent decode IMAGE…`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from central.logs import setup_logging
from gate_agent import decode_cmd
from gate_agent.config import NAMES, SECRET_FILES, SECRETS, ConfigError, GateConfig, load_config
from gate_agent.notify import Watchdog, notify, watchdog_interval
from hardware.decode import DecoderError
from hardware.frames import CameraError
from hardware.indicators import IndicatorError

logger = logging.getLogger("gate_agent")

USAGE = "usage: python -m gate_agent {run,decode} [options]  (see run --help, decode --help)"


HELP = {
    "central": "central's URL (default http://127.0.0.1:8000)",
    "device_token": "the gate's device token from `central admin add-gate` (required)",
    "camera": "camera spec, see below (default v4l2:0)",
    "scanner": "barcode scanner spec(s), comma-separated, see below (default: none)",
    "camera_width": "frame width asked of the camera (default 640)",
    "camera_height": "frame height asked of the camera (default 480)",
    "decoder": "fast QR decoder: zxing (default) or pyzbar",
    "second_pass_ms": "time the hard-frame second pass may take on a frame (default 40; 0: off)",
    "indicator": "light/buzzer/relay: console (default), fake or gpio[:green=17,red=27,…]",
    "data_dir": "folder for the outbox and manifest (default gate-data)",
    "dashboard_host": "address the staff page listens on (default 0.0.0.0)",
    "dashboard_port": "port of the staff page (default 8080)",
    "pin": "staff PIN for the page, 4-12 digits (required)",
    "ca_file": "CA certificate to pin for an https:// central",
    "verify_timeout_s": "decide offline when central is slower than this (default 0.8)",
    "sync_interval_s": "manifest pull interval (default 5)",
    "upload_interval_s": "upload retry interval (default 1)",
    "backoff_max_s": "longest retry backoff (default 4)",
    "dedup_s": "a code must leave the camera's view this long to be judged again (default 2)",
    "stall_s": "no progress this long = stalled, systemd watchdog pings stop (default 5)",
    "log_level": "DEBUG, INFO (default), WARNING or ERROR",
}

SPECS = """camera (--camera):
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


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gate_agent run",
        description="Run the gate: camera and scanners -> verdicts -> light, relay, staff page.",
        epilog=SPECS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file with the settings below")
    for name in NAMES:
        parser.add_argument(
            "--" + name.replace("_", "-"), dest=name, default=None, help=HELP.get(name)
        )
    for name in SECRET_FILES:
        secret = name.removesuffix("_file").replace("_", "-")
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            metavar="FILE",
            help=f"read --{secret} from this file (keeps it out of `ps`; or "
            f"TR_GATE_{name.upper()}, or TR_GATE_{name.removesuffix('_file').upper()})",
        )
    return parser


async def serve(config: GateConfig, *, secrets_on_command_line: list[str] | None = None) -> int:
    from gate_agent.agent import GateAgent
    from gate_agent.server import make_dashboard

    try:
        agent = GateAgent(config)
    except (CameraError, DecoderError, IndicatorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agent.start()
    runner = web.AppRunner(make_dashboard(agent), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.dashboard_host, config.dashboard_port)
        await site.start()
    except OSError as exc:
        print(f"error: dashboard_port {config.dashboard_port}: {exc.strerror}", file=sys.stderr)
        await runner.cleanup()
        agent.stop()
        return 1
    logger.info(
        "dashboard listening", extra={"fields": {"urls": [str(u) for u in runner.addresses]}}
    )
    if secrets_on_command_line:
        logger.warning(
            "secrets on the command line are visible to every account in `ps`: use "
            "--pin-file/--device-token-file or TR_GATE_PIN/TR_GATE_DEVICE_TOKEN",
            extra={"fields": {"flags": secrets_on_command_line}},
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    notify("READY=1")
    watchdog = Watchdog(agent.healthy)
    interval = watchdog_interval(default=2.0)
    try:
        while not stop.is_set():
            watchdog.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        notify("STOPPING=1")
        await runner.cleanup()
        await asyncio.to_thread(agent.stop)
    return 0


def run(argv: list[str]) -> int:
    try:
        args = _run_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    flags = {name: getattr(args, name) for name in (*NAMES, *SECRET_FILES)}
    try:
        config = load_config(flags, config_file=args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    on_command_line = [f"--{n.replace('_', '-')}" for n in SECRETS if flags.get(n) is not None]
    # httpx logs every request at INFO: a line per scan and per sync tick drowns the verdicts
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(serve(config, secrets_on_command_line=on_command_line))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    command, rest = argv[0], argv[1:]
    if command == "decode":
        return decode_cmd.main(rest)
    if command == "run":
        return run(rest)
    print(f"error: unknown command {command!r}; {USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
