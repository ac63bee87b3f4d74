"""Scanning: gates (device token; hall from the gate's registration) and staff (access token;
hall in the body) verify tickets; gates pull their hall's manifest and upload what they decided
while offline. Every answer carries central's time (data.server_time and X-Server-Time)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from central.clients.events import EventsClient
from central.clients.models import Event
from central.errors import ApiError
from central.orchestrator.answer_models import StaffVerdict
from central.orchestrator.answers import answers
from central.orchestrator.auth import authenticate, bearer_token, require_role
from central.orchestrator.backends import Backends
from central.orchestrator.keys import backends_key, gate_cache_key, runtime_key
from central.orchestrator.runtime import Runtime
from central.orchestrator.schemas import StaffVerifyBody
from central.orchestrator.verification import (
    Scanner,
    ScanResult,
    iso_ms,
    parse_time,
    ready,
    unavailable,
)
from central.web import parse_body, parse_query
from proto.gate_api import (
    CHECKINS_PATH,
    GATE_REVOKED,
    MANIFEST_PATH,
    REJECTED,
    VERIFY_PATH,
    CheckinItem,
    CheckinsAnswer,
    CheckinsBody,
    GateVerifyBody,
    ManifestAnswer,
    ManifestQuery,
    VerifyAnswer,
)
from proto.short_code import normalize_short_code

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# Gate scan ids are the gate's own; inventory and the entry log key scans by UUID, so each
# (gate, scan id) maps to one UUID — the same scan id from two gates never collides.
SCAN_NAMESPACE = uuid.UUID("3f0c7f54-5a0e-4d49-9a57-7d3bd1f0a9c1")
MANIFEST_EVENT_HORIZON = 24 * 3600  # events whose doors closed longer ago leave the manifest
UPLOAD_CONCURRENCY = 16
EVENTS_PAGE = 100
MAX_MANIFEST_EVENTS = 1000
# Seconds a gate's device token is trusted from cache (a revocation elsewhere waits this long).
GATE_CACHE_TTL = 0.5


class Replayed(Exception):
    """The scan id was answered before: the stored answer is the answer."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("replayed scan")
        self.answer = answer


def _runtime(request: web.Request) -> Runtime:
    runtime = request.app[runtime_key]
    assert isinstance(runtime, Runtime)
    return runtime


def server_time() -> str:
    return iso_ms(int(time.time() * 1000))


def scan_uuid(gate_id: str, scan_id: str) -> str:
    return str(uuid.uuid5(SCAN_NAMESPACE, f"{gate_id}:{scan_id}"))


def unix_seconds(value: datetime | float) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


async def authenticate_gate(request: web.Request) -> dict[str, Any]:
    """The registered gate holding the bearer device token. Read from events at most every
    GATE_CACHE_TTL per process (a scan would otherwise cost an events round trip): a revocation
    anywhere stops the gate within that, a revocation through this process at once."""
    token = bearer_token(request)
    if len(token) > 200:
        raise ApiError("UNAUTHORIZED", "unknown gate")
    events = request.app[backends_key].events
    gate: dict[str, Any] | None = await request.app[gate_cache_key].get(
        token, lambda: _read_gate(events, token)
    )
    if gate is None:
        # not "offline": the gate must stop admitting, also from its manifest
        raise ApiError(GATE_REVOKED, "this gate was revoked by the operator")
    return gate


def _gate_at_hand(request: web.Request) -> bool:
    """The request's gate is in this process's cache: its authentication needs no call."""
    try:
        token = bearer_token(request)
    except ApiError:
        return False
    return request.app[gate_cache_key].peek(token) is not None


async def _read_gate(events: EventsClient, token: str) -> dict[str, Any] | None:
    """The gate, or None when it was revoked (kept like a gate: asked again after the ttl)."""
    try:
        gate = dict(await events.authenticate_gate(token))
    except ApiError as err:
        if err.code == GATE_REVOKED:
            return None
        if err.code in ("VALIDATION_ERROR", "UNAUTHORIZED"):
            raise ApiError("UNAUTHORIZED", "unknown gate") from None
        raise unavailable(err, "events") from None
    return dict(gate)


# ----- online verification -----


@routes.post(VERIFY_PATH)
@answers(VerifyAnswer)
async def gate_verify(request: web.Request) -> VerifyAnswer:
    with _runtime(request).verify_limit.slot():
        return await _gate_verify(request)


async def _gate_verify(request: web.Request) -> VerifyAnswer:
    received = time.time()
    runtime = _runtime(request)
    # Authentication overlaps the lookups; it is awaited before any write or answer, and a bad
    # token is a 401 whatever the body holds.
    at_hand = _gate_at_hand(request)
    auth = asyncio.create_task(authenticate_gate(request))
    try:
        try:
            body = await parse_body(request, GateVerifyBody)
        except ApiError:
            await auth
            raise

        async def scanner() -> Scanner:
            gate = await auth
            stored = await runtime.gate_scans.get(gate["gate_id"], body.scan_id)
            if stored is not None:
                raise Replayed(stored)
            return Scanner(
                hall_id=gate["hall_id"],
                mode="online",
                scan_id=scan_uuid(gate["gate_id"], body.scan_id),
                gate_id=gate["gate_id"],
            )

        payload = body.qr_payload
        short = normalize_short_code(payload)
        if short is not None:
            # typed in by staff from under the QR: stands for that QR while it is valid
            payload = await runtime.short_codes.resolve(short, received) or short
        try:
            outcome, who = await runtime.verifier.verify(
                payload, scanner(), scanned_at=received, scanner_at_hand=at_hand
            )
        except Replayed as replay:
            return verify_answer(replay.answer, body.scan_id)
        if payload == short:
            outcome.message = "Unknown or expired short code: ask for the QR code"
    finally:
        if not auth.done():
            auth.cancel()
    answer = VerifyAnswer.make(**outcome.data(), scan_id=body.scan_id, mode="online").to_json()
    assert who.gate_id is not None
    await runtime.verifier.logged(who.scan_id)
    stored = await runtime.gate_scans.put(who.gate_id, body.scan_id, "online", answer)
    if stored is not answer and outcome.admitted and stored.get("result") != "SUCCESS":
        # The gate gave up waiting for this answer and already uploaded what it did instead:
        # it turned the holder away. The door is what happened: this admission is undone.
        assert outcome.seat is not None
        gate_result = str(stored.get("gate_result") or stored.get("result"))
        await runtime.verifier.undo_check_in(outcome.seat["seat_id"], who, gate_result)
    return verify_answer(stored, body.scan_id)


def verify_answer(stored: dict[str, Any], scan_id: str) -> VerifyAnswer:
    """The verify answer for a scan id's stored answer. One first stored by an upload (the gate
    sent the scan id there before this call finished) has no mode: it was decided offline, and
    says what central did with the upload (`outcome`)."""
    if "outcome" in stored:
        stored = {**stored, "scan_id": scan_id, "mode": "offline"}
    return VerifyAnswer.make(**{**stored, "server_time": server_time()})


@routes.post("/api/verify")
@answers(StaffVerdict)
async def staff_verify(request: web.Request) -> StaffVerdict:
    with _runtime(request).verify_limit.slot():
        return await _staff_verify(request)


async def _staff_verify(request: web.Request) -> StaffVerdict:
    received = time.time()
    me = await authenticate(request, request.app[backends_key])
    require_role(me, "staff", "admin")
    body = await parse_body(request, StaffVerifyBody)
    who = Scanner(
        hall_id=body.hall_id, mode="staff", scan_id=str(uuid.uuid4()), staff_user_id=me.user_id
    )
    verifier = _runtime(request).verifier
    outcome, _ = await verifier.verify(body.qr_payload, ready(who), scanned_at=received)
    await verifier.logged(who.scan_id)
    return StaffVerdict.model_validate({**outcome.data(), "server_time": server_time()})


# ----- manifest -----


async def hall_events(backends: Backends, hall_id: str) -> list[Event]:
    found: list[Event] = []
    page = 1
    while len(found) < MAX_MANIFEST_EVENTS:
        batch = await backends.events.events_page(page, EVENTS_PAGE, hall_id=hall_id)
        found.extend(batch.items)
        if len(batch.items) < EVENTS_PAGE:
            break
        page += 1
    return found


@routes.get(MANIFEST_PATH)
@answers(ManifestAnswer)
async def manifest(request: web.Request) -> ManifestAnswer:
    gate = await authenticate_gate(request)
    query = parse_query(request, ManifestQuery)
    backends = request.app[backends_key]
    runtime = _runtime(request)
    horizon = time.time() - MANIFEST_EVENT_HORIZON
    events = [
        e
        for e in await hall_events(backends, gate["hall_id"])
        if (parse_time(e.get("doors_close")) or float("inf")) > horizon
    ]
    seats: list[dict[str, Any]] = []
    cursor, more = query.cursor, False
    if events:
        reply = await backends.inventory.manifest(
            [e["event_id"] for e in events], query.cursor, query.limit
        )
        cursor, more = reply.cursor, reply.more
        seats = [
            {
                "seat_id": s.seat_id,
                "event_id": s.event_id,
                "status": s.status,
                "owner_epoch": s.owner_epoch,
                "refunded_epoch": s.refunded_epoch,
                "device_serial": s.device_serial,
                "hall_id": gate["hall_id"],
                "row": s.row,
                "number": s.number,
                "checked_in_at": iso_ms(s.checked_in_at_ms) if s.checked_in_at_ms else None,
            }
            for s in reply.seats
        ]
    return ManifestAnswer.make(
        **{
            "gate_id": gate["gate_id"],
            "gate_name": gate.get("name"),
            "hall_id": gate["hall_id"],
            "cursor": cursor,
            "more": more,
            "seats": seats,
            "events": [
                {
                    "event_id": e["event_id"],
                    "name": e["name"],
                    "hall_id": e["hall_id"],
                    "event_date": e["event_date"],
                    "doors_open": e.get("doors_open"),
                    "doors_close": e.get("doors_close"),
                    "status": e.get("status", "SCHEDULED"),
                }
                for e in events
            ],
            "keys": runtime.keyring.public_keys_json(),
            "ttl_seconds": runtime.verifier.ttl,
            "skew_seconds": runtime.verifier.skew,
            "server_time": server_time(),
        }
    )


# ----- offline upload -----


class Upload:
    """One batch of offline decisions from one gate, applied through the verification path."""

    def __init__(self, runtime: Runtime, gate: dict[str, Any], now: float) -> None:
        self.runtime = runtime
        self.gate_id: str = gate["gate_id"]
        self.hall_id: str = gate["hall_id"]
        self.now = now

    async def apply(self, item: CheckinItem) -> dict[str, Any]:
        stored = await self.runtime.gate_scans.get(self.gate_id, item.scan_id)
        if stored is not None:
            if item.decision == REJECTED and _admitted_online(stored):
                return await self._overrule(item, stored)
            return {
                "scan_id": item.scan_id,
                "outcome": "ALREADY_RECEIVED",
                "result": stored["result"],
            }
        answer = await self._decide(item)
        await self.runtime.verifier.logged(scan_uuid(self.gate_id, item.scan_id))
        stored = await self.runtime.gate_scans.put(self.gate_id, item.scan_id, "upload", answer)
        if stored is not answer:  # a concurrent upload or online verify of the scan id was first
            if item.decision == REJECTED and _admitted_online(stored):
                return await self._overrule(item, stored)
            return {
                "scan_id": item.scan_id,
                "outcome": "ALREADY_RECEIVED",
                "result": stored["result"],
            }
        return answer

    def _scanner(self, item: CheckinItem) -> Scanner:
        return Scanner(
            hall_id=self.hall_id,
            mode="offline",
            scan_id=scan_uuid(self.gate_id, item.scan_id),
            gate_id=self.gate_id,
        )

    async def _overrule(self, item: CheckinItem, stored: dict[str, Any]) -> dict[str, Any]:
        """Central admitted this scan online, but its answer reached the gate too late: the gate
        had decided alone and turned the holder away. The check-in is undone (only if still this
        scan's) and the stored answer becomes the gate's, so a repeat upload reads the same."""
        seat = stored.get("seat") or {}
        await self.runtime.verifier.undo_check_in(
            str(seat.get("seat_id")), self._scanner(item), item.result
        )
        answer = {
            "scan_id": item.scan_id,
            "outcome": "REJECTED",
            "result": item.result,
            "gate_result": item.result,
            "message": "turned away at the gate; central's late admission was undone",
            "seat": stored.get("seat"),
            "event": stored.get("event"),
        }
        await self.runtime.gate_scans.replace(self.gate_id, item.scan_id, "upload", answer)
        return answer

    async def _decide(self, item: CheckinItem) -> dict[str, Any]:
        verifier = self.runtime.verifier
        at = unix_seconds(item.scanned_at)
        who = self._scanner(item)
        scanned = iso_ms(int(at * 1000))
        if at > self.now + verifier.skew:
            outcome = ScanResult("INVALID", "scanned_at is later than central's time")
            verifier.log_scan(outcome, who, self.now, detail=f"scanned_at {scanned} in the future")
            return self._answer(item, "REJECTED", outcome)
        if item.decision == REJECTED:
            # Turned away at the door: nothing to apply, but the scan is recorded as the gate saw it.
            local = verifier.keyring.verify(
                item.qr_payload, at, ttl=verifier.ttl, skew=verifier.skew
            )
            outcome = ScanResult(item.result, f"rejected offline by the gate: {item.result}")
            if local.claims is not None:
                # central may have admitted this very scan online after the gate stopped waiting
                # (its answer then never stored: e.g. the process died before it could be)
                await verifier.undo_check_in(local.claims.seat_id, who, item.result)
                outcome.seat = {"seat_id": local.claims.seat_id}
                # the seat's event, so the event's dashboard counts the rejection too
                place = await verifier.place(local.claims.seat_id)
                if place is not None:
                    outcome.seat, outcome.event_id, outcome.event = place
                    if outcome.event is not None:
                        outcome.hall_expected = outcome.event["hall_id"]
            verifier.log_scan(outcome, who, at)
            return self._answer(item, "REJECTED", outcome)
        outcome, _ = await verifier.verify(
            item.qr_payload, ready(who), scanned_at=at, write_log=False
        )
        if outcome.result == "SUCCESS":
            verifier.log_scan(outcome, who, at)
            return self._answer(item, "APPLIED", outcome)
        if outcome.result == "DUPLICATE":
            # Admitted here while offline, but already admitted elsewhere: both admissions stand
            # in the record; this one is a conflict for the operator, never dropped.
            first_gate = outcome.details.get("checked_in_gate_id")
            outcome.details.update(
                conflict={
                    "first": {"gate_id": first_gate, "at": outcome.checked_in_at},
                    "second": {"gate_id": self.gate_id, "at": scanned},
                }
            )
            detail = (
                f"admitted at gate {first_gate or '-'} at {outcome.checked_in_at}; "
                f"also admitted offline at gate {self.gate_id} at {scanned}"
            )
            verifier.log_scan(outcome, who, at, result="CONFLICT", detail=detail)
            return self._answer(item, "CONFLICT", outcome)
        detail = f"admitted offline by the gate ({item.result}); central says {outcome.result}"
        verifier.log_scan(outcome, who, at, detail=detail)
        return self._answer(item, "REJECTED", outcome)

    @staticmethod
    def _answer(item: CheckinItem, outcome_name: str, outcome: ScanResult) -> dict[str, Any]:
        data = outcome.data()
        data.pop("result")
        return {
            "scan_id": item.scan_id,
            "outcome": outcome_name,
            "result": outcome.result,
            "gate_result": item.result,
            **data,
        }


def _admitted_online(stored: dict[str, Any]) -> bool:
    """The stored answer is central's online SUCCESS for this scan id."""
    return stored.get("mode") == "online" and stored.get("result") == "SUCCESS"


def _seat_key(runtime: Runtime, item: CheckinItem, index: int) -> str:
    """Items for one seat are applied one after another, oldest scan first, so the earliest
    admission is the one that counts; different seats go in parallel."""
    verdict = runtime.keyring.verify(item.qr_payload, time.time(), ttl=2**31, skew=2**31)
    return verdict.claims.seat_id if verdict.claims is not None else f"#{index}"


@routes.post(CHECKINS_PATH)
@answers(CheckinsAnswer)
async def checkins(request: web.Request) -> CheckinsAnswer:
    gate = await authenticate_gate(request)
    body = await parse_body(request, CheckinsBody)
    runtime = _runtime(request)
    upload = Upload(runtime, gate, time.time())
    items = body.items
    first_of: dict[str, int] = {}
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        if item.scan_id in first_of:
            continue  # the same scan id twice in one batch: answered from the first
        first_of[item.scan_id] = index
        groups.setdefault(_seat_key(runtime, item, index), []).append(index)
    answers: list[dict[str, Any] | None] = [None] * len(items)
    limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

    async def run(indexes: list[int]) -> None:
        async with limit:
            for i in sorted(indexes, key=lambda i: unix_seconds(items[i].scanned_at)):
                answers[i] = await upload.apply(items[i])

    failures = [
        r
        for r in await asyncio.gather(*(run(g) for g in groups.values()), return_exceptions=True)
        if isinstance(r, BaseException)
    ]
    if failures:
        # Applied items are stored; the retry of the whole batch answers them ALREADY_RECEIVED.
        raise failures[0]
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        answer = answers[index]
        if answer is None:
            first = answers[first_of[item.scan_id]]
            assert first is not None
            answer = {
                "scan_id": item.scan_id,
                "outcome": "ALREADY_RECEIVED",
                "result": first["result"],
            }
        out.append(answer)
    return CheckinsAnswer.make(items=out, server_time=server_time())
