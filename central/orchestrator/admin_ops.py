"""Operator actions, shared by the admin HTTP routes and `python -m central admin`."""

from __future__ import annotations

import uuid
from typing import Any

from central.errors import ApiError
from central.faults import fault_point
from central.inventory.servicer import MAX_SEATS_PER_CREATE
from central.orchestrator.backends import Backends
from central.orchestrator.schemas import CreateEventBody, SeatLayout
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


def plan_seats(layout: SeatLayout, pricing: dict[str, int]) -> list[pb.NewSeat]:
    rows = row_names(layout.rows) if isinstance(layout.rows, int) else list(layout.rows)
    if len(set(rows)) != len(rows):
        raise ApiError("VALIDATION_ERROR", "seats.rows: row names must be unique")
    category_of_row: dict[str, str] = {}
    for category, cat_rows in (layout.category_rows or {}).items():
        if category not in pricing:
            raise ApiError(
                "VALIDATION_ERROR", f"seats.category_rows: category {category!r} has no price"
            )
        for row in cat_rows:
            if row not in rows:
                raise ApiError("VALIDATION_ERROR", f"seats.category_rows: no row {row!r}")
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


async def create_event(backends: Backends, body: CreateEventBody) -> dict[str, Any]:
    seats = plan_seats(body.seats, body.pricing)  # validate fully before anything is written
    event_id = str(uuid.uuid4())
    payload = {
        "event_id": event_id,
        "name": body.name,
        "venue": {"name": body.venue.name, "address": body.venue.address},
        "hall_id": body.hall_id,
        "event_date": body.event_date.isoformat(),
        "pricing": body.pricing,
        "category_rows": body.seats.category_rows or {},
        "total_seats": len(seats),
    }
    if body.doors_open is not None:
        payload["doors_open"] = body.doors_open.isoformat()
    if body.doors_close is not None:
        payload["doors_close"] = body.doors_close.isoformat()
    event = await backends.events.call("POST", "/events", json=payload)
    try:
        fault_point("admin.before_create_seats")
        created = await backends.inventory.call(
            "CreateSeats", pb.CreateSeatsRequest(event_id=event_id, seats=seats), timeout=30
        )
    except BaseException:
        # All or nothing: inventory wrote no seat (one transaction), so the event goes too
        # instead of being listed with none.
        await backends.events.call("DELETE", f"/events/{event_id}")
        raise
    return {
        "event_id": event["event_id"],
        "name": event["name"],
        "hall_id": event["hall_id"],
        "event_date": event["event_date"],
        "seats_created": created.seats_created,
        "seat_ids": list(created.seat_ids),
    }


async def add_gate(backends: Backends, hall_id: str, name: str) -> dict[str, Any]:
    gate = await backends.events.call("POST", "/gates", json={"hall_id": hall_id, "name": name})
    return {
        "gate_id": gate["gate_id"],
        "device_token": gate["device_token"],
        "hall_id": gate["hall_id"],
        "name": gate["name"],
    }


async def grant_credits(
    backends: Backends, user_id: str, amount: int, idempotency_key: str | None = None
) -> dict[str, Any]:
    await backends.users.call("GET", f"/users/{user_id}")  # USER_NOT_FOUND before any write
    key = idempotency_key or f"grant:{uuid.uuid4()}"
    entry = await backends.users.call(
        "POST",
        "/credits/entries",
        json={"user_id": user_id, "amount": amount, "kind": "GRANT", "idempotency_key": key},
    )
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
) -> dict[str, Any]:
    user = await backends.users.call(
        "POST",
        "/users",
        json={
            "email": email,
            "password": password,
            "phone": phone,
            "role": role,
            "is_flagged": flagged,
            "verified": True,
        },
    )
    if credits:
        await grant_credits(backends, user["user_id"], credits, f"initial:{user['user_id']}")
        user = await backends.users.call("GET", f"/users/{user['user_id']}")
    return user
