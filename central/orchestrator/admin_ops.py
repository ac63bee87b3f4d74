"""Operator actions, shared by the admin HTTP routes and `python -m central admin`."""

from __future__ import annotations

import uuid
from typing import Any

from central.clients.models import User
from central.errors import ApiError
from central.faults import fault_point
from central.inventory.servicer import MAX_SEATS_PER_CREATE
from central.orchestrator.backends import Backends
from central.orchestrator.schemas import CreateEventBody, SeatLayout
from central.progress import Progress
from central.timeutil import as_utc
from proto import inventory_pb2 as pb

# Inventory creates an event's seats in one call (one transaction) of at most this many.
MAX_SEATS_PER_EVENT = MAX_SEATS_PER_CREATE


def row_names(count: int) -> list[str]:
    """A, B, … Z, AA, AB, … — the way venues letter their rows."""
    names = []
    for i in range(count):
        name, n = "", i + 1
        while n:
            n, rem = divmod(n - 1, 26)
            name = chr(ord("A") + rem) + name
        names.append(name)
    return names


def _row_list(layout: SeatLayout) -> list[str]:
    return row_names(layout.rows) if isinstance(layout.rows, int) else list(layout.rows)


def expand_rows(entries: list[str], rows: list[str], field: str) -> list[str]:
    """Row names, where an entry may also be a range of the layout's rows: "A-C" is A, B, C
    ("1-5" likewise for numbered rows). A name the layout has is that row, even with a dash."""
    out: list[str] = []
    position = {row: i for i, row in enumerate(rows)}
    for entry in entries:
        if entry in position:
            out.append(entry)
            continue
        first, dash, last = entry.partition("-")
        if not dash or first not in position or last not in position:
            raise ApiError(
                "VALIDATION_ERROR",
                f"{field}: no row or row range {entry!r} (rows are {rows[0]}..{rows[-1]})",
                {"field": field},
            )
        if position[first] > position[last]:
            raise ApiError(
                "VALIDATION_ERROR",
                f"{field}: range {entry!r} runs backwards",
                {"field": field},
            )
        out.extend(rows[position[first] : position[last] + 1])
    return out


def plan_seats(layout: SeatLayout, pricing: dict[str, int]) -> list[pb.NewSeat]:
    rows = _row_list(layout)
    if len(set(rows)) != len(rows):
        raise ApiError("VALIDATION_ERROR", "seats.rows: row names must be unique")
    category_of_row: dict[str, str] = {}
    for category, cat_rows in (layout.category_rows or {}).items():
        field = f"seats.category_rows.{category}"
        if category not in pricing:
            raise ApiError(
                "VALIDATION_ERROR",
                f"{field}: category {category!r} has no price in pricing",
                {"field": field},
            )
        for row in expand_rows(cat_rows, rows, field):
            if category_of_row.get(row, category) != category:
                raise ApiError(
                    "VALIDATION_ERROR",
                    f"{field}: row {row!r} is already in category {category_of_row[row]!r}",
                    {"field": field},
                )
            category_of_row[row] = category
    # Rows no list names take the first category no list claims (else the first category).
    unclaimed = [c for c in pricing if c not in (layout.category_rows or {})]
    default_category = unclaimed[0] if unclaimed else next(iter(pricing))
    seats = [
        pb.NewSeat(row=row, number=n, category=category_of_row.get(row, default_category))
        for row in rows
        for n in range(1, layout.seats_per_row + 1)
    ]
    if len(seats) > MAX_SEATS_PER_EVENT:
        raise ApiError(
            "VALIDATION_ERROR",
            f"seats: at most {MAX_SEATS_PER_EVENT} seats per event (asked for {len(seats)})",
            {"field": "seats", "max_seats": MAX_SEATS_PER_EVENT},
        )
    return seats


def check_times(body: CreateEventBody) -> None:
    """The doors window, judged before anything is written (the events service would refuse
    it too, but only after the request got that far)."""
    opens, closes = body.doors_open, body.doors_close
    if opens is not None and closes is not None and as_utc(opens) >= as_utc(closes):
        raise ApiError(
            "VALIDATION_ERROR", "doors_close: must be after doors_open", {"field": "doors_close"}
        )
    for name, value in (
        ("event_date", body.event_date),
        ("doors_open", opens),
        ("doors_close", closes),
    ):
        if value is not None and not 2000 <= value.year <= 2100:
            raise ApiError("VALIDATION_ERROR", f"{name}: year must be 2000..2100", {"field": name})


# The steps create_event reports to a Progress (the `admin create-event` command shows them).
CREATE_EVENT_STEPS = 4


async def create_event(
    backends: Backends, body: CreateEventBody, progress: Progress | None = None
) -> dict[str, Any]:
    # validate fully before anything is written: a refused body creates nothing
    check_times(body)
    seats = plan_seats(body.seats, body.pricing)
    rows = len(_row_list(body.seats))
    if progress is not None:
        progress.step(f"{len(seats):,} seats planned ({rows} rows of {body.seats.seats_per_row})")
    event_id = str(uuid.uuid4())
    payload = {
        "event_id": event_id,
        "name": body.name,
        "venue": {"name": body.venue.name, "address": body.venue.address},
        "hall_id": body.hall_id,
        "event_date": body.event_date.isoformat(),
        "pricing": body.pricing,
        "category_rows": {
            category: expand_rows(
                cat_rows, _row_list(body.seats), f"seats.category_rows.{category}"
            )
            for category, cat_rows in (body.seats.category_rows or {}).items()
        },
        "total_seats": len(seats),
    }
    if body.doors_open is not None:
        payload["doors_open"] = body.doors_open.isoformat()
    if body.doors_close is not None:
        payload["doors_close"] = body.doors_close.isoformat()
    event = await backends.events.create_event(payload)
    if progress is not None:
        progress.step(f"event {event_id} recorded")
        progress.step(f"creating {len(seats):,} seats in one transaction (all or none)")
    try:
        fault_point("admin.before_create_seats")
        seat_ids = await backends.inventory.create_seats(event_id, seats, timeout=30)
    except BaseException:
        # All or nothing: inventory wrote no seat (one transaction), so the event goes too
        # instead of being listed with none.
        await backends.events.delete_event(event_id)
        raise
    if progress is not None:
        progress.count("seats", len(seat_ids), len(seats))
        progress.step(f"{len(seat_ids):,} seats created")
    return {
        "event_id": event["event_id"],
        "name": event["name"],
        "hall_id": event["hall_id"],
        "event_date": event["event_date"],
        "seats_created": len(seat_ids),
        "seat_ids": seat_ids,
    }


async def add_gate(backends: Backends, hall_id: str, name: str) -> dict[str, Any]:
    gate = await backends.events.create_gate(hall_id, name)
    return {
        "gate_id": gate["gate_id"],
        "device_token": gate["device_token"],
        "hall_id": gate["hall_id"],
        "name": gate["name"],
    }


async def grant_credits(
    backends: Backends, user_id: str, amount: int, idempotency_key: str | None = None
) -> dict[str, Any]:
    await backends.users.user(user_id)  # USER_NOT_FOUND before any write
    key = idempotency_key or f"grant:{uuid.uuid4()}"
    entry = await backends.users.grant(user_id, amount, key)
    return {"user_id": user_id, "credit_balance": entry["credit_balance"]}


async def create_user(
    backends: Backends,
    *,
    email: str,
    password: str,
    phone: str | None = None,
    credits: int = 0,
    flagged: bool = False,
    role: str = "customer",
) -> User:
    user = await backends.users.create_user(
        email, password, phone, role=role, is_flagged=flagged, verified=True
    )
    if credits:
        await grant_credits(backends, user["user_id"], credits, f"initial:{user['user_id']}")
        user = await backends.users.user(user["user_id"])
    return user
