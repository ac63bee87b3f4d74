"""Binding an attendee's phone to a ticket for TR2 codes (api-contract "Offline codes bound to the
attendee's phone"): the page sends its P-256 public key once, online; central bumps the seat's
device serial (the previous phone's codes are refused from then on) and certifies the key for the
seat's current owner epoch until the event's doors close. From then on the phone signs its own
codes without the network."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from central.clients.inventory import owned_and_sold
from central.errors import ApiError
from central.orchestrator.answer_models import DeviceBound
from central.orchestrator.answers import answers
from central.orchestrator.auth import authenticate
from central.orchestrator.keys import backends_key, runtime_key
from central.orchestrator.runtime import Runtime
from central.orchestrator.schemas import Strict
from central.orchestrator.verification import parse_time
from central.timeutil import iso_ms
from central.web import parse_body, parse_uuid
from proto.ticket_token import DEVICE_KEY_LENGTH, TTL_SECONDS, device_key_or_none

routes = web.RouteTableDef()

# A certificate outlives no event: it ends when the doors close. An event without a doors window
# (never in practice) gets a week, so a phone is re-certified at least that often.
FALLBACK_CERT_LIFETIME_S = 7 * 86400


class DeviceBindBody(Strict):
    public_key: Annotated[str, Field(min_length=44, max_length=46)]


def compressed_point(text: str) -> bytes:
    """The 33-byte compressed P-256 point in ``public_key`` (base64url, padding optional)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != DEVICE_KEY_LENGTH or device_key_or_none(raw) is None:
        raise ApiError(
            "VALIDATION_ERROR",
            "public_key: must be base64url of a 33-byte compressed P-256 point",
            {"fields": {"public_key": "not a compressed P-256 point"}},
        )
    return raw


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cert_end(event: dict[str, Any] | None, now: float) -> int:
    closes = parse_time((event or {}).get("doors_close"))
    return (
        int(closes) if closes is not None and closes > now else int(now) + FALLBACK_CERT_LIFETIME_S
    )


@routes.post("/api/tickets/{seat_id}/device")
@answers(DeviceBound)
async def bind_device(request: web.Request) -> DeviceBound:
    backends = request.app[backends_key]
    me = await authenticate(request, backends)
    seat_id = parse_uuid(request.match_info["seat_id"], "seat_id")
    point = compressed_point((await parse_body(request, DeviceBindBody)).public_key)
    seat = await backends.inventory.seat(seat_id)
    owned_and_sold(seat, me.user_id, "device binding")
    bound = await backends.inventory.bind_device(seat_id, me.user_id, seat.owner_epoch)
    runtime = request.app[runtime_key]
    assert isinstance(runtime, Runtime)
    try:
        event = await runtime.events.get(bound.event_id)
    except ApiError:
        event = None
    now = time.time()
    not_after = cert_end(event, now)
    cert = runtime.keyring.certify_device(
        bound.seat_id, bound.owner_epoch, bound.device_serial, not_after, point, now
    )
    return DeviceBound.model_validate(
        {
            "seat_id": bound.seat_id,
            "cert": b64url(cert),
            "device_serial": bound.device_serial,
            "not_after": not_after,
            "not_after_iso": iso_ms(not_after * 1000),
            "ttl_seconds": TTL_SECONDS,
            "server_time": iso_ms(int(now * 1000)),
        }
    )
