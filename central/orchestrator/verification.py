"""The verification fan-out of scenario 3: one scanned QR text in, one verdict out.

The token is judged locally first (signature, age, future tolerance): a forged, expired or
not-yet-valid token costs no network call. A well-formed one starts two lookups at once, beside the
gate's authentication — the seat (inventory VerifyTicket) and the event (the event cache) — each
under its own deadline, and the verdict follows api-contract.md's precedence by awaiting them in
that order, so an early verdict (NOT_FOUND, a refunded ticket's CANCELLED) does not wait for a
lookup it does not need (the event's status comes before TRANSFERRED: an event's cancellation is
CANCELLED). The admission itself is one conditional MarkCheckedIn: of many concurrent scans exactly
one wins, the others are DUPLICATE.

"Paid" (a CONFIRMED order exists for the seat) is read from the seat itself: a seat is SOLD or
CHECKED_IN only while its order is CONFIRMED. The purchase confirms the order before ConfirmSeat
sells the seat (and a failed ConfirmSeat sold nothing), and a refund frees the seat before it marks
the order REFUNDED (sagas/refunds.py); no other step moves an order out of CONFIRMED. So the orders
service is not asked on every scan.

Every scan's entry-log row goes through the orchestrator's outbox (entry_log.py): kept in its own
database before the answer is stored, written to inventory in the background until it lands. A
failing entry log never fails an admission, and loses no row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from central.clients.inventory import CheckInRefused
from central.errors import ApiError
from central.orchestrator.backends import Backends
from central.orchestrator.entry_log import EntryLogOutbox
from central.orchestrator.event_cache import EventCache
from central.signing import KeyRing
from central.timeutil import iso_ms
from proto import inventory_pb2 as pb
from proto.ticket_token import TTL_SECONDS, TicketClaims

log = logging.getLogger(__name__)

RESULTS = (
    "INVALID",
    "EXPIRED",
    "NOT_YET_VALID",
    "NOT_FOUND",
    "CANCELLED",
    "TRANSFERRED",
    "UNPAID",
    "DUPLICATE",
    "WRONG_HALL",
    "WRONG_DATE",
    "SUCCESS",
)
MESSAGES = {
    "SUCCESS": "welcome: ticket checked in",
    "DUPLICATE": "ticket already checked in",
    "UNPAID": "ticket is not paid",
    "NOT_FOUND": "no such ticket",
    "WRONG_HALL": "ticket is for another hall",
    "WRONG_DATE": "outside the event's doors window",
    "EXPIRED": "QR code expired: refresh the ticket",
    "NOT_YET_VALID": "QR code is from the future: check the phone's clock",
    "TRANSFERRED": "ticket was transferred: the new owner's QR code is needed",
    "CANCELLED": "ticket cancelled: the event was cancelled or the ticket refunded",
    "INVALID": "not a valid ticket",
}
CANCELLED_EVENT = ("CANCELLING", "CANCELLED")
# a seat in these states has a CONFIRMED order (the module's docstring says why)
PAID_STATES = ("SOLD", "CHECKED_IN")
DEVICE_REPLACED = "device_replaced"
DEVICE_REPLACED_MESSAGE = (
    "this phone's code is no longer valid: the ticket was opened on another phone"
)
SEAT_EVENT_CACHE_MAX = 200_000


@dataclass(frozen=True)
class Scanner:
    """Who scanned, where, and under which scan id (a UUID: inventory keys the admission by it)."""

    hall_id: str
    mode: str  # online | offline | staff
    scan_id: str
    gate_id: str | None = None
    staff_user_id: str | None = None


@dataclass
class ScanResult:
    result: str
    message: str
    seat: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    checked_in_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    hall_expected: str | None = None
    latency_ms: float = 0.0
    # the entry-log row was written with the admission itself (MarkCheckedIn): none to submit
    logged: bool = False

    @property
    def admitted(self) -> bool:
        return self.result == "SUCCESS"

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "result": self.result,
            "message": self.message,
            "seat": self.seat,
            "event": self.event,
        }
        if self.checked_in_at is not None:
            out["checked_in_at"] = self.checked_in_at
        out.update(self.details)
        return out


async def ready(who: Scanner) -> Scanner:
    """A scanner already known, as the awaitable verify() takes."""
    return who


def parse_time(text: Any) -> float | None:
    """Unix seconds of an ISO-8601 text the events service answered (None when absent/bad)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def outside_doors(event: dict[str, Any], at: float) -> bool:
    """``at`` (unix seconds) is before the event's doors open or after they close."""
    opens, closes = parse_time(event.get("doors_open")), parse_time(event.get("doors_close"))
    return (opens is not None and at < opens) or (closes is not None and at > closes)


def seat_view(seat: Any) -> dict[str, Any]:
    return {"seat_id": seat.seat_id, "row": seat.row, "number": seat.number}


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event["event_id"], "name": event["name"], "hall_id": event["hall_id"]}


def unavailable(err: ApiError, service: str) -> ApiError:
    """A lookup that failed on the service's side is "central cannot decide now" (503: the gate
    decides offline), never a 500 of the verification."""
    if err.status < 500:
        return err
    return ApiError("SERVICE_UNAVAILABLE", f"{service} could not answer ({err.code})")


class Verifier:
    def __init__(
        self,
        backends: Backends,
        events: EventCache,
        keyring: KeyRing,
        *,
        skew: int,
        call_timeout: float,
        entry_log: EntryLogOutbox,
        ttl: int = TTL_SECONDS,
    ) -> None:
        self.backends = backends
        self.events = events
        self.keyring = keyring
        self.skew = skew
        self.ttl = ttl
        self.call_timeout = call_timeout
        # A seat never changes its event: knowing it lets the event lookup start with the others.
        self._seat_events: dict[str, str] = {}
        self.entry_log = entry_log

    # ----- the verdict -----

    async def verify(
        self,
        payload: Any,
        scanner: Awaitable[Scanner],
        *,
        scanned_at: float,
        write_log: bool = True,
        scanner_at_hand: bool = False,
    ) -> tuple[ScanResult, Scanner]:
        """Judge one scan at ``scanned_at`` (central's unix seconds).

        ``scanner`` is awaited alongside the lookups (a gate's authentication overlaps them); it
        must resolve before anything is written, and its exception (401) propagates.
        ``scanner_at_hand``: it resolves without a network call (the gate's authentication is
        cached), so it is awaited first and the scan may be admitted in one call (_admit_open)."""
        started = time.perf_counter()
        local = self.keyring.verify(payload, scanned_at, ttl=self.ttl, skew=self.skew)
        if not local.ok:
            who = await scanner
            claims = local.claims
            outcome = ScanResult(local.result, MESSAGES[local.result])
            if claims is not None:
                outcome.seat = {"seat_id": claims.seat_id, "row": None, "number": None}
                outcome.details["issued_at"] = iso_ms(claims.issued_at * 1000)
            else:
                outcome.details["reason"] = local.reason
        else:
            assert local.claims is not None
            outcome, who = await self._judge(
                local.claims, scanner, scanned_at, started, scanner_at_hand
            )
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        if write_log:
            self.log_scan(outcome, who, scanned_at)
        return outcome, who

    async def _judge(
        self,
        claims: TicketClaims,
        scanner: Awaitable[Scanner],
        scanned_at: float,
        started: float,
        scanner_at_hand: bool = False,
    ) -> tuple[ScanResult, Scanner]:
        seat_t: asyncio.Future[Any] | None = None
        if scanner_at_hand:
            who = await scanner
            tried = await self._admit_open(claims, who, scanned_at, started)
            if isinstance(tried, ScanResult):
                return tried, who
            scanner = ready(who)
            if tried is not None and (tried.seat is not None or tried.outcome == "NOT_FOUND"):
                # refused: judged below from the seat as the refusal shows it, no second read
                seat_t = asyncio.get_running_loop().create_future()
                seat_t.set_result(self._remember(tried.seat))
        if seat_t is None:
            seat_t = asyncio.create_task(self._seat(claims.seat_id))
        event_t = asyncio.create_task(self._event(claims.seat_id, seat_t))
        tasks = (seat_t, event_t)
        try:
            who = await scanner
            seat = await seat_t
            if seat is None:
                return ScanResult("NOT_FOUND", MESSAGES["NOT_FOUND"]), who
            outcome = ScanResult("", "", seat=seat_view(seat), event_id=seat.event_id)
            if seat.refunded_epoch and claims.owner_epoch <= seat.refunded_epoch:
                return self._set(outcome, "CANCELLED", "ticket cancelled: it was refunded"), who
            # The event's status decides before TRANSFERRED (CANCELLED comes first); the lookup
            # is cached and already running, so this rarely waits.
            early_event = await event_t
            if early_event is not None and early_event.get("status") in CANCELLED_EVENT:
                outcome.event = event_view(early_event)
                return self._set(outcome, "CANCELLED", "the event was cancelled"), who
            if claims.owner_epoch != seat.owner_epoch:
                return self._set(outcome, "TRANSFERRED"), who
            if claims.device_serial is not None and claims.device_serial != seat.device_serial:
                return self._device_replaced(outcome), who
            if seat.status not in PAID_STATES:
                return self._set(outcome, "UNPAID"), who
            if seat.status == "CHECKED_IN" and seat.checked_in_scan_id != who.scan_id:
                return await self._duplicate(outcome, seat), who
            event = await event_t
            if event is None:
                return self._set(outcome, "NOT_FOUND", "the ticket's event no longer exists"), who
            outcome.event = event_view(event)
            outcome.hall_expected = event["hall_id"]
            if event["hall_id"] != who.hall_id:
                outcome.details.update(expected_hall=event["hall_id"], presented_hall=who.hall_id)
                return self._set(outcome, "WRONG_HALL", f"ticket is for {event['hall_id']}"), who
            if outside_doors(event, scanned_at):
                outcome.details.update(
                    event_date=event.get("event_date"),
                    doors_open=event.get("doors_open"),
                    doors_close=event.get("doors_close"),
                )
                return self._set(outcome, "WRONG_DATE"), who
            return await self._check_in(outcome, claims, who, scanned_at, started), who
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # retrieved: a lookup nobody needed may have failed

    @staticmethod
    def _set(outcome: ScanResult, result: str, message: str | None = None) -> ScanResult:
        outcome.result = result
        outcome.message = message or MESSAGES[result]
        return outcome

    def _device_replaced(self, outcome: ScanResult) -> ScanResult:
        outcome.details["reason"] = DEVICE_REPLACED
        return self._set(outcome, "INVALID", DEVICE_REPLACED_MESSAGE)

    async def _duplicate(self, outcome: ScanResult, seat: Any) -> ScanResult:
        self._set(outcome, "DUPLICATE")
        at = iso_ms(seat.checked_in_at_ms) if seat.checked_in_at_ms else None
        outcome.checked_in_at = at
        outcome.details["checked_in_gate_id"] = seat.checked_in_gate_id or None
        outcome.message = f"ticket already checked in at {at}"
        event = await self._event_quiet(seat.event_id)
        if event is not None:
            outcome.event = event_view(event)
            outcome.hall_expected = event["hall_id"]
        return outcome

    async def _admit_open(
        self, claims: TicketClaims, who: Scanner, scanned_at: float, started: float
    ) -> ScanResult | CheckInRefused | None:
        """The short way in: when the gate's hall has exactly one event open now (not cancelled,
        doors open, from the event cache), one MarkCheckedIn admits the ticket only if its seat
        is of that event, SOLD, at the token's owner epoch (and device): exactly what every check
        before SUCCESS would have found, with no seat read first. A refusal carries the seat as
        it stands, and the caller judges it the long way from that (None: not tried)."""
        event = self._open_event(who.hall_id, scanned_at)
        if event is None:
            return None
        outcome = ScanResult(
            "",
            "",
            seat={"seat_id": claims.seat_id, "row": None, "number": None},
            event=event_view(event),
            event_id=event["event_id"],
            hall_expected=event["hall_id"],
        )
        return await self._mark(outcome, claims, who, scanned_at, started, event["event_id"])

    def _open_event(self, hall_id: str, at: float) -> dict[str, Any] | None:
        """The one event of this hall that admits at ``at``, from the cache without waiting."""
        events = self.events.hall_events(hall_id)
        if not events:
            return None
        open_now = [
            e
            for e in events
            if e.get("hall_id") == hall_id
            and e.get("status") not in CANCELLED_EVENT
            and not outside_doors(e, at)
        ]
        return open_now[0] if len(open_now) == 1 else None

    async def _mark(
        self,
        outcome: ScanResult,
        claims: TicketClaims,
        who: Scanner,
        scanned_at: float,
        started: float,
        event_id: str = "",
    ) -> ScanResult | CheckInRefused:
        """The admission (MarkCheckedIn): ``outcome`` made SUCCESS, or inventory's refusal."""
        # the admission's log row goes with the admission, in inventory's one write: a ticket is
        # never checked in without its row, and an undone check-in rewrites that very row
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        row = self.log_entry(outcome, who, scanned_at, result="SUCCESS", detail=MESSAGES["SUCCESS"])
        EntryLogOutbox.name(row)
        seat = await self.backends.inventory.mark_checked_in(
            claims.seat_id,
            claims.owner_epoch,
            who.gate_id or "",
            who.scan_id,
            int(scanned_at * 1000),
            claims.device_serial or 0,
            entry_log=row,
            event_id=event_id,
            timeout=self.call_timeout,
        )
        if isinstance(seat, CheckInRefused):
            return seat
        self._set(outcome, "SUCCESS")
        outcome.seat = seat_view(seat)
        outcome.checked_in_at = iso_ms(seat.checked_in_at_ms)
        outcome.logged = True
        return outcome

    async def _check_in(
        self,
        outcome: ScanResult,
        claims: TicketClaims,
        who: Scanner,
        scanned_at: float,
        started: float,
    ) -> ScanResult:
        seat = await self._mark(outcome, claims, who, scanned_at, started)
        if isinstance(seat, CheckInRefused):
            if seat.outcome == "DUPLICATE":
                # lost the race: the winner's seat came with the refusal (when, at which gate)
                if seat.seat is not None and seat.seat.status == "CHECKED_IN":
                    return await self._duplicate(outcome, seat.seat)
                return self._set(outcome, "DUPLICATE")
            if seat.outcome == "DEVICE_REPLACED":
                return self._device_replaced(outcome)  # another phone was bound since the read
            if seat.outcome == "OWNER_CHANGED":
                return self._set(outcome, "TRANSFERRED")  # the owner changed since the read
            if seat.outcome == "NOT_FOUND":
                return self._set(outcome, "NOT_FOUND")
            return self._set(outcome, "UNPAID")  # e.g. refunded and released since the read
        return seat

    async def undo_check_in(self, seat_id: str, who: Scanner, gate_result: str) -> bool:
        """The gate turned this scan's holder away while central had admitted them (its answer
        came after the gate's timeout): the door is what happened, so the check-in this scan made
        (and only that one) is undone and its entry-log row says what the gate did. True when
        there was one to undo. Raises SERVICE_UNAVAILABLE when inventory cannot answer."""
        detail = (
            f"turned away by the gate offline ({gate_result}) while central's late verdict "
            "had admitted it: check-in undone"
        )
        undone = await self.backends.inventory.undo_check_in(
            seat_id, who.scan_id, gate_result, detail, timeout=self.call_timeout
        )
        if undone:
            log.warning(
                "check-in of seat %s undone: gate %s turned the holder away (%s), scan %s",
                seat_id,
                who.gate_id,
                gate_result,
                who.scan_id,
            )
        return undone

    # ----- the lookups, each under its own deadline -----

    async def _seat(self, seat_id: str) -> Any:
        return self._remember(
            await self.backends.inventory.find_seat(seat_id, timeout=self.call_timeout)
        )

    def _remember(self, seat: Any) -> Any:
        if seat is None:
            return None
        if len(self._seat_events) >= SEAT_EVENT_CACHE_MAX:
            self._seat_events.clear()
        self._seat_events[seat.seat_id] = seat.event_id
        return seat

    async def _event(self, seat_id: str, seat_t: asyncio.Future[Any]) -> dict[str, Any] | None:
        event_id = self._seat_events.get(seat_id)
        if event_id is None:
            seat = await seat_t
            if seat is None:
                return None
            event_id = seat.event_id
        try:
            return await asyncio.wait_for(self.events.get(event_id), self.call_timeout)
        except TimeoutError:
            raise ApiError("SERVICE_UNAVAILABLE", "events did not answer in time") from None
        except ApiError as err:
            if err.code == "EVENT_NOT_FOUND":
                return None
            raise unavailable(err, "events") from None

    async def place(self, seat_id: str) -> tuple[dict[str, Any], str, dict[str, Any] | None] | None:
        """(seat view, event id, event view) of a seat, for recording a scan that was already
        decided (a gate's upload); None when inventory cannot say — the record is still kept."""
        try:
            seat = await self._seat(seat_id)
        except ApiError:
            return None
        if seat is None:
            return None
        event = await self._event_quiet(seat.event_id)
        return seat_view(seat), seat.event_id, event_view(event) if event is not None else None

    async def _event_quiet(self, event_id: str) -> dict[str, Any] | None:
        """Event data only to decorate an answer already decided: a failure leaves it out."""
        try:
            return await asyncio.wait_for(self.events.get(event_id), self.call_timeout)
        except (TimeoutError, ApiError):
            return None

    # ----- the entry log -----

    def log_scan(
        self,
        outcome: ScanResult,
        who: Scanner,
        scanned_at: float,
        *,
        result: str | None = None,
        detail: str = "",
    ) -> None:
        if outcome.logged and result in (None, "SUCCESS"):
            return  # inventory wrote this admission's row with the check-in
        self.entry_log.submit(
            self.log_entry(outcome, who, scanned_at, result=result, detail=detail)
        )

    @staticmethod
    def log_entry(
        outcome: ScanResult,
        who: Scanner,
        scanned_at: float,
        *,
        result: str | None = None,
        detail: str = "",
    ) -> pb.EntryLogEntry:
        return pb.EntryLogEntry(
            seat_id=(outcome.seat or {}).get("seat_id") or "",
            event_id=outcome.event_id or "",
            gate_id=who.gate_id or "",
            staff_user_id=who.staff_user_id or "",
            scan_id=who.scan_id,
            result=result or outcome.result,
            hall_presented=who.hall_id,
            hall_expected=outcome.hall_expected or "",
            mode=who.mode,
            scanned_at_ms=int(scanned_at * 1000),
            latency_ms=round(outcome.latency_ms, 3),
            detail=detail or outcome.message,
        )

    async def logged(self, scan_id: str) -> None:
        """Wait until the entry-log row of this scan is kept (call before the answer is stored
        or sent: from then on a killed process cannot lose it)."""
        await self.entry_log.kept(scan_id)
