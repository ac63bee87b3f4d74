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


def _run_parser() -> argparse.ArgumentParser:
    from gate_agent.settings_help import CAMERA_SPECS, flag_help

    parser = argparse.ArgumentParser(
        prog="python -m gate_agent run",
        description="Run the gate: camera, decoder, verdicts (online, else offline from the "
        "synced manifest), indicators and the staff dashboard. Settings come from flags, then "
        "TR_GATE_* variables, then the TOML file, then the defaults.",
        epilog=CAMERA_SPECS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file with the settings below")
    for name in NAMES:
        parser.add_argument(
            "--" + name.replace("_", "-"), dest=name, default=None, help=flag_help(name)
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
        "staff dashboard at %s", dashboard_url(config.dashboard_host, config.dashboard_port)
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
        agent.stopping()  # no sync retry is logged after the line below
        logger.info("gate stopping")
        await runner.cleanup()
        await asyncio.to_thread(agent.stop)
        logger.info("gate stopped")
    return 0


def dashboard_url(host: str, port: int) -> str:
    """What staff type into a browser: a wildcard address means "this machine, any interface"."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


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
    setup_logging(config.log_level, service="gate")
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
