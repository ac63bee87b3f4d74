"""The few lines `serve` prints when a person started it at a terminal: where to look, where the
data is, where one-time codes go, how to make an admin. Logs stay JSON on stderr."""

from __future__ import annotations

import shlex

from central.config import Settings


def otp_destination(spec: str) -> str:
    kind, _, arg = spec.partition(":")
    if kind == "file":
        return f"appended to {arg} (one JSON line each)"
    if kind == "webhook":
        return f"POSTed to {arg}"
    return 'in the log, as a line "OTP for EMAIL (PURPOSE …): CODE"'


def banner(settings: Settings, url: str) -> str:
    admin = ["python", "-m", "central", "admin"]
    if settings.database_url:
        admin += ["--database-url", settings.database_url]
    else:
        admin += ["--data-dir", str(settings.data_dir.resolve())]
    admin += ["create-user", "--email", "you@example.com", "--password", "…", "--role", "admin"]
    data = settings.database_url or str(settings.data_dir.resolve())
    return "\n".join(
        [
            "",
            "TicketRemaster central is serving",
            f"  attendee app      {url}/",
            f"  organiser console {url}/admin/",
            f"  public API        {url}/api/events   (health: {url}/health)",
            f"  data              {data}",
            f"  one-time codes    {otp_destination(settings.otp_delivery)}",
            f"  make an admin     {shlex.join(admin)}",
            "Ctrl-C stops it.",
            "",
        ]
    )
