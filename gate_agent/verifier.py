"""The gate's own judgement: the local token checks (signature, age) and the offline decision from
the synced manifest plus this gate's admissions — central's rules and verdict names, in central's
order (api-contract "Verification"), in memory so a verdict costs microseconds."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proto.ticket_token import TicketClaims, Verdict, public_keys_from_json, verify_token

logger = logging.getLogger(__name__)

LOCAL_REJECTIONS = frozenset({"INVALID", "EXPIRED", "NOT_YET_VALID"})
ADMITTED = "SUCCESS"
# Without a measured offset the gate's clock may be minutes off (no RTC): judging age with it
# would reject good tickets, so before the first exchange only the signature is checked locally.
_NO_TIME_LIMIT = 10**9

MESSAGES = {
    "SUCCESS": "Welcome",
    "DUPLICATE": "Ticket already used",
    "UNPAID": "Ticket not paid",
    "NOT_FOUND": "Unknown seat",
    "WRONG_HALL": "Wrong hall",
    "WRONG_DATE": "Not admitted at this time",
    "EXPIRED": "Code expired, refresh the ticket",
    "NOT_YET_VALID": "Code from the future, check the phone's clock",
    "TRANSFERRED": "Ticket was transferred",
    "CANCELLED": "Ticket cancelled (event cancelled or ticket refunded)",
    "INVALID": "Not a valid ticket",
    "DISABLED": "Gate disabled by the organiser",
}


def _instant(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


@dataclass
class Decision:
    result: str
    message: str
    seat: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    claims: TicketClaims | None = None

    @property
    def admitted(self) -> bool:
        return self.result == ADMITTED


@dataclass
class Manifest:
    """What the last sync brought: seats and events of the gate's hall, and the public keys."""

    seats: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[int, Ed25519PublicKey] = field(default_factory=dict)
    key_rows: dict[int, str] = field(default_factory=dict)
    cursor: str | None = None
    gate_id: str | None = None
    gate_name: str | None = None
    hall_id: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, data: dict[str, Any]) -> None:
        """Merge one manifest answer (incremental: rows replace rows by id). ValueError on keys
        that do not parse, before anything changed."""
        keys = public_keys_from_json(data.get("keys") or [])
        seats = {str(s["seat_id"]): dict(s) for s in data.get("seats") or [] if "seat_id" in s}
        events = {str(e["event_id"]): dict(e) for e in data.get("events") or [] if "event_id" in e}
        with self._lock:
            self.seats.update(seats)
            self.events.update(events)
            self.keys.update(keys)
            for item in data.get("keys") or []:
                self.key_rows[int(item["kid"])] = str(item["public_key"])
            if data.get("cursor") is not None:
                self.cursor = str(data["cursor"])
            self.gate_id = str(data.get("gate_id") or self.gate_id or "") or None
            name = data.get("gate_name")
            if name:
                self.gate_name = str(name)
            hall = data.get("hall_id")
            if hall:
                self.hall_id = str(hall)

    def as_rows(self) -> dict[str, Any]:
        """The whole manifest in the answer's own shape, for the outbox to persist."""
        with self._lock:
            return {
                "cursor": self.cursor,
                "gate_id": self.gate_id,
                "gate_name": self.gate_name,
                "hall_id": self.hall_id,
                "seats": list(self.seats.values()),
                "events": list(self.events.values()),
                "keys": [{"kid": k, "public_key": v} for k, v in self.key_rows.items()],
            }

    def mark_checked_in(self, seat_id: str) -> None:
        with self._lock:
            if seat_id in self.seats:
                self.seats[seat_id] = {**self.seats[seat_id], "status": "CHECKED_IN"}


def local_check(
    text: str, keys: dict[int, Ed25519PublicKey], now: float, *, clock_known: bool
) -> Verdict:
    if clock_known:
        return verify_token(text, keys, now)
    return verify_token(text, keys, now, ttl=_NO_TIME_LIMIT, skew=_NO_TIME_LIMIT)


def seat_view(seat: dict[str, Any] | None, seat_id: str | None) -> dict[str, Any] | None:
    if seat is None:
        return {"seat_id": seat_id, "row": None, "number": None} if seat_id else None
    return {"seat_id": seat.get("seat_id"), "row": seat.get("row"), "number": seat.get("number")}


CANCELLED_EVENT_STATES = ("CANCELLING", "CANCELLED")


def is_cancelled(claims: TicketClaims, seat: dict[str, Any], event: dict[str, Any] | None) -> bool:
    """The event was cancelled (the manifest carries its status), or this code's owner epoch
    is one whose ticket was refunded (or older than it)."""
    if event is not None and event.get("status") in CANCELLED_EVENT_STATES:
        return True
    refunded = int(seat.get("refunded_epoch") or 0)
    return refunded > 0 and claims.owner_epoch <= refunded


DEVICE_REPLACED = "device_replaced"


def decide_offline(
    claims: TicketClaims,
    manifest: Manifest,
    admitted_here: set[str] | frozenset[str],
    now: float,
    *,
    hall_id: str | None = None,
) -> Decision:
    """Central's order after the token checks: NOT_FOUND, CANCELLED, TRANSFERRED, INVALID (a TR2
    code of a replaced device), UNPAID, DUPLICATE, WRONG_HALL, WRONG_DATE, SUCCESS — judged on
    what this gate knows."""
    seat = manifest.seats.get(claims.seat_id)

    def done(result: str, event: dict[str, Any] | None = None, extra: str = "") -> Decision:
        message = MESSAGES[result] + (f" ({extra})" if extra else "")
        return Decision(result, message, seat_view(seat, claims.seat_id), event, claims)

    if seat is None:
        return done("NOT_FOUND")
    if is_cancelled(claims, seat, manifest.events.get(str(seat.get("event_id")))):
        return done("CANCELLED")
    # A newer epoch than the manifest's means the manifest is stale, not the token: the token is
    # central's signature over that epoch.
    if claims.owner_epoch < int(seat.get("owner_epoch") or 0):
        return done("TRANSFERRED")
    # Likewise for a TR2 code's device: only an older serial than the manifest's is known replaced.
    if claims.device_serial is not None and claims.device_serial < int(
        seat.get("device_serial") or 0
    ):
        return done("INVALID", extra=DEVICE_REPLACED)
    status = seat.get("status")
    if status not in ("SOLD", "CHECKED_IN"):
        return done("UNPAID")
    event = manifest.events.get(str(seat.get("event_id")))
    event_view = (
        {
            "event_id": event.get("event_id"),
            "name": event.get("name"),
            "hall_id": seat.get("hall_id"),
        }
        if event
        else None
    )
    if status == "CHECKED_IN" or claims.seat_id in admitted_here:
        return done("DUPLICATE", event_view)
    hall = hall_id or manifest.hall_id
    if hall and seat.get("hall_id") and seat.get("hall_id") != hall:
        return done("WRONG_HALL", event_view, str(seat.get("hall_id")))
    if event is not None:
        opens, closes = _instant(event.get("doors_open")), _instant(event.get("doors_close"))
        if (opens is not None and now < opens) or (closes is not None and now > closes):
            return done("WRONG_DATE", event_view)
    return done("SUCCESS", event_view)
