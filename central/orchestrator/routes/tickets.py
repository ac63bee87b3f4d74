"""The caller's tickets, read from current ownership (so right after a transfer), and the rotating
signed QR payload of one of them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from central.clients.inventory import owned_and_sold
from central.errors import ApiError
from central.orchestrator import lookups
from central.orchestrator.answer_models import TicketList, TicketQr
from central.orchestrator.answers import answers
from central.orchestrator.auth import authenticate
from central.orchestrator.keys import backends_key, runtime_key
from central.orchestrator.runtime import Runtime
from central.timeutil import iso_ms
from central.web import parse_uuid
from proto.ticket_token import TTL_SECONDS

routes = web.RouteTableDef()

TICKET_STATUSES = ("SOLD", "CHECKED_IN")


def _runtime(request: web.Request) -> Runtime:
    runtime = request.app[runtime_key]
    assert isinstance(runtime, Runtime)
    return runtime


def ticket_event(event: dict[str, Any] | None, event_id: str) -> dict[str, Any]:
    if event is None:  # the seat outlived its event record: still show the ticket
        return {"event_id": event_id}
    venue = event.get("venue") or {}
    return {
        "event_id": event["event_id"],
        "name": event["name"],
        "hall_id": event["hall_id"],
        "event_date": event["event_date"],
        "doors_open": event.get("doors_open"),
        "doors_close": event.get("doors_close"),
        "venue": {"venue_id": venue.get("venue_id"), "name": venue.get("name")},
    }


@routes.get("/api/tickets")
@answers(TicketList)
async def list_tickets(request: web.Request) -> TicketList:
    backends = request.app[backends_key]
    me = await authenticate(request, backends)
    runtime = _runtime(request)
    seats = await backends.inventory.list_seats(owner_user_id=me.user_id, statuses=TICKET_STATUSES)
    event_ids = sorted({s.event_id for s in seats})

    async def event_or_none(event_id: str) -> dict[str, Any] | None:
        try:
            return await runtime.events.get(event_id)
        except ApiError as err:
            if err.code == "EVENT_NOT_FOUND":
                return None
            raise

    found = await asyncio.gather(*(event_or_none(e) for e in event_ids))
    events = dict(zip(event_ids, found, strict=True))
    # "checked in at 19:03, Gate 1": the gate by its name, as the organiser called it
    gate_names = await lookups.gate_names(
        backends, (s.checked_in_gate_id for s in seats if s.status == "CHECKED_IN")
    )
    tickets: list[dict[str, Any]] = [
        {
            "seat_id": s.seat_id,
            "event": ticket_event(events[s.event_id], s.event_id),
            "row": s.row,
            "number": s.number,
            "category": s.category,
            "status": s.status,
            # the phone currently certified for TR2 codes (0: none): a page holding an older
            # one knows its codes are refused and offers to take the ticket back
            "device_serial": s.device_serial,
            "owner_epoch": s.owner_epoch,
            "checked_in_at": iso_ms(s.checked_in_at_ms) if s.checked_in_at_ms else None,
            "checked_in_gate": (
                {"gate_id": s.checked_in_gate_id, "name": gate_names.get(s.checked_in_gate_id)}
                if s.checked_in_gate_id
                else None
            ),
        }
        for s in seats
    ]
    tickets.sort(key=lambda t: (t["event"].get("event_date") or "", t["row"], t["number"]))
    return TicketList.model_validate(tickets)


@routes.get("/api/tickets/{seat_id}/qr")
@answers(TicketQr)
async def ticket_qr(request: web.Request) -> TicketQr:
    backends = request.app[backends_key]
    me = await authenticate(request, backends)
    seat_id = parse_uuid(request.match_info["seat_id"], "seat_id")
    seat = await backends.inventory.seat(seat_id)
    owned_and_sold(seat, me.user_id, "QR code")
    now = time.time()
    keyring = _runtime(request).keyring
    payload = keyring.sign(seat.seat_id, seat.owner_epoch, now)
    issued = int(now)
    runtime = _runtime(request)
    # shown under the QR for staff to type in; valid exactly as long as this QR
    short_code = await runtime.short_codes.issue(
        payload, issued + TTL_SECONDS + runtime.verifier.skew
    )
    return TicketQr(
        seat_id=seat.seat_id,
        qr_payload=payload,
        short_code=short_code,
        generated_at=iso_ms(issued * 1000),
        expires_at=iso_ms((issued + TTL_SECONDS) * 1000),
        ttl_seconds=TTL_SECONDS,
        server_time=iso_ms(int(now * 1000)),
    )
