"""UTC time in the shapes the services store and answer: one place, one format.

Every stored time is UTC; SQLite hands datetimes back naive, so readers say so with as_utc().
Answers use ISO-8601 with a `Z`."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_ms() -> int:
    return int(time.time() * 1000)


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat().replace("+00:00", "Z")


def iso_ms(ms: int) -> str:
    """Unix milliseconds (inventory's unit) as ISO-8601 UTC."""
    return iso(datetime.fromtimestamp(ms / 1000, UTC)) or ""
