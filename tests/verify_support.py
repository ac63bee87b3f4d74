"""Shared steps for verification tests: an event with a doors window, a sold ticket, its QR
payload, registered gates, scans through the public endpoints, and entry-log read-backs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cluster import Cluster
from purchase_support import pay, reserve

from central.orchestrator.routes.gate import scan_uuid
from central.signing import KeyRing


async def make_event(
    c: Cluster,
    *,
    hall: str = "HALL-A",
    seats: int = 5,
    starts_in: timedelta = timedelta(hours=1),
    doors: tuple[timedelta, timedelta] | None = None,
) -> dict[str, Any]:
    """An event starting ``starts_in`` from now; ``doors`` = (open, close) offsets from now."""
    admin = await c.make_user(role="admin")
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "name": f"Show {uuid.uuid4().hex[:6]}",
        "venue": {"name": "Test Venue"},
        "hall_id": hall,
        "event_date": (now + starts_in).isoformat(),
        "pricing": {"STD": 100},
        "seats": {"rows": 1, "seats_per_row": seats},
    }
    if doors is not None:
        body["doors_open"] = (now + doors[0]).isoformat()
        body["doors_close"] = (now + doors[1]).isoformat()
    status, answer = await c.call("POST", "/api/admin/events", token=admin["token"], json_body=body)
    assert status == 201, answer
    return {**answer["data"], "admin": admin}


async def buy(c: Cluster, seat_id: str, buyer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The seat SOLD to a (new) buyer through reserve and pay; answers the buyer."""
    buyer = buyer or await c.make_user(credits=1000)
    status, body = await reserve(c, buyer["token"], seat_id)
    assert status == 200, body
    status, body = await pay(c, buyer["token"], body["data"]["order_id"])
    assert status == 200, body
    return buyer


async def qr(c: Cluster, token: str, seat_id: str) -> str:
    status, body = await c.call("GET", f"/api/tickets/{seat_id}/qr", token=token)
    assert status == 200, body
    return str(body["data"]["qr_payload"])


def keyring(c: Cluster) -> KeyRing:
    """The cluster's own signing keys (for tokens issued at chosen times)."""
    return KeyRing.load_or_create(c.settings.data_dir)


async def seat(c: Cluster, seat_id: str) -> Any:
    return await c.backends.inventory.seat(seat_id)


async def add_gate(c: Cluster, admin_token: str, hall: str = "HALL-A") -> dict[str, Any]:
    status, body = await c.call(
        "POST",
        "/api/admin/gates",
        token=admin_token,
        json_body={"hall_id": hall, "name": f"Gate {uuid.uuid4().hex[:4]}"},
    )
    assert status == 201, body
    return dict(body["data"])


async def gate_verify(
    c: Cluster, gate: dict[str, Any], payload: Any, scan_id: str | None = None
) -> tuple[int, Any]:
    return await c.call(
        "POST",
        "/api/gate/verify",
        token=gate["device_token"],
        json_body={
            "qr_payload": payload,
            "scan_id": scan_id or str(uuid.uuid4()),
            "scanned_at": datetime.now(UTC).isoformat(),
        },
    )


async def entry_logs(
    c: Cluster, gate: dict[str, Any], scan_id: str, *, expect: int = 1, wait: float = 5.0
) -> list[Any]:
    """The entry-log rows of one gate scan (written in the background: poll until they are)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        entries = await c.backends.inventory.list_entry_logs(
            scan_id=scan_uuid(gate["gate_id"], scan_id)
        )
        if len(entries) >= expect or asyncio.get_running_loop().time() > deadline:
            return entries
        await asyncio.sleep(0.05)
