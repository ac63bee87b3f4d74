"""`python -m central serve …` and `python -m central admin … COMMAND` (api-contract "Commands")."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from central.config import ENV_SETTINGS, ConfigError, Settings, load_settings
from central.errors import ApiError
from central.logs import setup_logging

if TYPE_CHECKING:
    from central.orchestrator.schemas import CreateEventBody


def _add_settings_flags(parser: argparse.ArgumentParser, *, only: tuple[str, ...] = ()) -> None:
    from central.settings_help import flag_help

    for attr, flag, kind in ENV_SETTINGS:
        if only and attr not in only:
            continue
        if kind is list:  # repeatable
            parser.add_argument(
                flag, dest=attr, default=None, action="append", help=flag_help(attr)
            )
            continue
        parser.add_argument(
            flag, dest=attr, default=None, metavar=attr.upper(), help=flag_help(attr)
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m central", description="TicketRemaster central")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the central services")
    _add_settings_flags(serve)
    serve.set_defaults(service=None)
    serve.add_argument("--seed-sample", action="store_true", help="seed a small sample event")

    demo = sub.add_parser(
        "demo",
        help="central, a gate and a scripted crowd in a temporary directory, for a first look",
        description="Starts central (embedded, temporary data) and one gate agent, runs a script "
        "of registrations, purchases, a transfer and scans, then prints the addresses of the "
        "attendee app, the organiser console and the gate dashboard. Ctrl-C stops everything.",
    )
    demo.add_argument("--port", type=int, default=8000, help="central's public port (default 8000)")
    demo.add_argument(
        "--once",
        action="store_true",
        help="run the script, print one JSON object {scans, urls} and exit "
        "(0 when every scan got its expected verdict)",
    )

    openapi = sub.add_parser(
        "openapi", help="print the public API's OpenAPI 3.1 document (generated from the code)"
    )
    openapi.add_argument(
        "--markdown", action="store_true", help="print it as docs/api.md (Markdown) instead"
    )

    admin = sub.add_parser("admin", help="operator commands (print one JSON object)")
    _add_settings_flags(admin, only=("data_dir", "database_url", "log_level", "otp_delivery"))
    cmds = admin.add_subparsers(dest="admin_command", required=True)

    cu = cmds.add_parser("create-user", help="a verified account → {user_id, …}")
    cu.add_argument("--email", required=True, help="login e-mail (unique)")
    password = cu.add_mutually_exclusive_group()
    password.add_argument(
        "--password",
        help="password, 8 to 128 characters (visible in `ps` to every account: prefer "
        "--password-file)",
    )
    password.add_argument(
        "--password-file", metavar="FILE", help="read the password from this file"
    )
    cu.add_argument("--phone", help="phone number in E.164 form, e.g. +6591234567 (optional)")
    cu.add_argument("--credits", type=int, default=0, help="starting credits (default: 0)")
    cu.add_argument("--flagged", action="store_true", help="every purchase needs a one-time code")
    cu.add_argument(
        "--role",
        choices=("customer", "staff", "admin"),
        default="customer",
        help="customer, staff (verifies at the door) or admin (default: customer)",
    )

    ce = cmds.add_parser("create-event", help="an event with its seats → {event_id, seat_ids}")
    ce.add_argument("--name", required=True, help="the event's name")
    ce.add_argument("--hall", required=True, help="hall code, e.g. HALL-A (its gates scan it)")
    ce.add_argument("--rows", type=int, required=True, help="rows of seats (A, B, …)")
    ce.add_argument("--seats-per-row", type=int, required=True, help="seats in each row")
    ce.add_argument("--price", type=int, required=True, help="price of a seat in credits")
    ce.add_argument("--date", help="ISO date-time of the start (default: one hour from now)")
    ce.add_argument(
        "--doors-open", help="ISO date-time the gates start admitting (default: 6 h before)"
    )
    ce.add_argument(
        "--doors-close", help="ISO date-time the gates stop admitting (default: 6 h after)"
    )
    ce.add_argument("--venue", default="Main Venue", help="venue name (default: Main Venue)")

    ag = cmds.add_parser(
        "add-gate", help="register a gate → {gate_id, device_token (shown once), hall_id}"
    )
    ag.add_argument("--hall", required=True, help="hall code the gate admits to")
    ag.add_argument("--name", required=True, help="the gate's name, e.g. 'North 1'")

    gc = cmds.add_parser("grant-credits", help="add credits → {user_id, credit_balance}")
    gc.add_argument("--user-id", required=True, help="the account's user_id")
    gc.add_argument("--amount", type=int, required=True, help="credits to add (> 0)")
    return parser


def _settings_from(args: argparse.Namespace) -> Settings:
    flags = {attr: getattr(args, attr, None) for attr, _f, _k in ENV_SETTINGS}
    if args.command == "serve" and flags.get("service") is None:
        flags["service"] = None
    settings = load_settings(flags)
    if args.command == "serve":
        settings.seed_sample = bool(args.seed_sample)
    return settings


async def _admin(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from central.orchestrator import admin_ops
    from central.progress import Progress
    from central.serve import make_backends, start_atomic_services

    command: str = args.admin_command
    # The one slow command says what it is doing, on stderr (stdout stays the one JSON object):
    # most of its time is the services starting, then the seats.
    progress, event = None, None
    if command == "create-event":
        # a refused layout is one line before anything starts, as for every admin command
        event = _event_body(args)
        admin_ops.check_times(event)
        admin_ops.plan_seats(event.seats, event.pricing)
        progress = Progress("create-event", total=2 + admin_ops.CREATE_EVENT_STEPS)
        progress.step("starting central's services")
    async with AsyncExitStack() as stack:
        addresses = await start_atomic_services(stack, settings)
        backends = make_backends(settings, addresses)
        await backends.start()
        stack.push_async_callback(backends.close)
        if progress is not None:
            progress.step("services started")
        if command == "create-user":
            user = await admin_ops.create_user(
                backends,
                email=args.email,
                password=_password(args),
                phone=args.phone,
                credits=args.credits,
                flagged=args.flagged,
                role=args.role,
            )
            return dict(user)
        if command == "create-event":
            assert event is not None
            result = await admin_ops.create_event(backends, event, progress)
            return {"event_id": result["event_id"], "seat_ids": result["seat_ids"]}
        if command == "add-gate":
            return await admin_ops.add_gate(backends, args.hall, args.name)
        if command == "grant-credits":
            return await admin_ops.grant_credits(backends, args.user_id, args.amount)
        raise ConfigError(f"unknown admin command {command!r}")


def _event_body(args: argparse.Namespace) -> CreateEventBody:
    from pydantic import ValidationError

    from central.orchestrator.schemas import CreateEventBody
    from central.web import validation_error

    date = args.date or (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body: dict[str, Any] = {
        "name": args.name,
        "venue": {"name": args.venue},
        "hall_id": args.hall,
        "event_date": date,
        "pricing": {"STANDARD": args.price},
        "seats": {"rows": args.rows, "seats_per_row": args.seats_per_row},
    }
    if args.doors_open:
        body["doors_open"] = args.doors_open
    if args.doors_close:
        body["doors_close"] = args.doors_close
    try:
        return CreateEventBody.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        raise validation_error(exc) from None


def _password(args: argparse.Namespace) -> str:
    """--password-file, else TR_ADMIN_PASSWORD, else --password (which `ps` shows everyone)."""
    if args.password_file:
        try:
            with open(args.password_file) as fh:
                return fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"--password-file: cannot read it ({exc.strerror})") from None
    value = os.environ.get("TR_ADMIN_PASSWORD") or args.password
    if not value:
        raise ConfigError("create-user: give --password-file FILE or TR_ADMIN_PASSWORD")
    return str(value)


def _run(coro_factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    from central.serve import run_event_loop

    return run_event_loop(coro_factory)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "openapi":
        from central.orchestrator.openapi import build_openapi, to_markdown

        spec = build_openapi()
        print(to_markdown(spec) if args.markdown else json.dumps(spec, indent=2), end="")
        return 0
    if args.command == "demo":
        from central.demo import run_demo

        return run_demo(args.port, args.once)
    try:
        settings = _settings_from(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        setup_logging(settings.log_level)
        # SQLite (aiosqlite) and password hashing run in threads; with the default 5 ms switch
        # interval every hand-back to the event loop can wait a whole interval for the GIL.
        sys.setswitchinterval(0.0005)
        from central.serve import serve
        from central.signing import KeyRingError
        from central.workers import WorkerDied

        try:
            _run(lambda: serve(settings))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyRingError as exc:
            print(f"error: --signing-keys-dir: {exc}", file=sys.stderr)
            return 2
        except WorkerDied as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    setup_logging("WARNING" if getattr(args, "log_level", None) is None else settings.log_level)
    try:
        result = _run(lambda: _admin(settings, args))
    except ApiError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
