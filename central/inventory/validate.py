"""Request field checks: a malformed field is refused (INVALID_ARGUMENT naming it) before any write."""

from __future__ import annotations

import uuid

from central.inventory.errors import invalid

MAX_TTL_SECONDS = 3600
MAX_TEXT = 1000


def uuid_field(value: str, field: str) -> str:
    """A required UUID, returned in canonical lower-case form."""
    if not value:
        raise invalid(field, "required")
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise invalid(field, "not a valid UUID") from None


def optional_uuid(value: str, field: str) -> str | None:
    return uuid_field(value, field) if value else None


def ttl_field(value: int) -> int:
    if not 1 <= value <= MAX_TTL_SECONDS:
        raise invalid("ttl_seconds", f"must be 1..{MAX_TTL_SECONDS}")
    return value


def text_field(value: str, field: str, max_len: int, *, required: bool = True) -> str:
    if required and not value.strip():
        raise invalid(field, "required")
    if len(value) > max_len:
        raise invalid(field, f"at most {max_len} characters")
    return value


def choice_field(value: str, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise invalid(field, f"must be one of {', '.join(allowed)}")
    return value


def time_ms_field(value: int, field: str, default: int) -> int:
    """0 means "now" (the default); negative times are refused."""
    if value < 0:
        raise invalid(field, "must not be negative")
    return value or default


def limit_field(value: int, default: int, maximum: int) -> int:
    if value < 0:
        raise invalid("limit", "must not be negative")
    return min(value or default, maximum)
