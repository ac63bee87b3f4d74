"""Shared steps for purchase tests: an event with seats, a buyer, and state read-backs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cluster import Cluster

PRICE = 100


async def make_event(
    c: Cluster, *, seats_per_row: int = 5, rows: int = 1, hall: str = "HALL-A"
) -> dict[str, Any]:
    admin = await c.make_user(role="admin")
    status, body = await c.call(
        "POST",
        "/api/admin/events",
        token=admin["token"],
        json_body={
            "name": "Test Show",
            "venue": {"name": "Test Venue"},
            "hall_id": hall,
            "event_date": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "pricing": {"STD": PRICE},
            "seats": {"rows": rows, "seats_per_row": seats_per_row},
        },
    )
    assert status == 201, body
    return {**body["data"], "admin": admin}


async def seat_status(c: Cluster, seat_id: str) -> Any:
    return await c.backends.inventory.seat(seat_id)


async def order_status(c: Cluster, order_id: str) -> str:
    order = await c.backends.orders.call("GET", f"/orders/{order_id}")
    return str(order["status"])


async def balance(c: Cluster, user_id: str) -> int:
    data = await c.backends.users.call("GET", f"/credits/{user_id}/balance")
    return int(data["credit_balance"])


async def reserve(c: Cluster, token: str, seat_id: str, **headers: str) -> tuple[int, Any]:
    return await c.call(
        "POST", "/api/reserve", json_body={"seat_id": seat_id}, token=token, headers=headers
    )


async def pay(c: Cluster, token: str, order_id: str, **headers: str) -> tuple[int, Any]:
    return await c.call(
        "POST", "/api/pay", json_body={"order_id": order_id}, token=token, headers=headers
    )
