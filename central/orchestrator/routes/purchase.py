"""Purchase (saga 1): reserve, pay, verify-otp."""

from __future__ import annotations

import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime

from aiohttp import web

from central.errors import ApiError
from central.orchestrator.answer_models import OtpVerified, Paid, Reserved
from central.orchestrator.answers import answers, envelope
from central.orchestrator.auth import Principal, authenticate
from central.orchestrator.idempotency import Answer
from central.orchestrator.keys import backends_key
from central.orchestrator.runtime import Runtime
from central.orchestrator.saga_requests import fail_waiting, runtime_of, settled, with_idempotency
from central.orchestrator.sagas.purchase import KIND
from central.orchestrator.schemas import PayBody, ReserveBody, VerifyOtpBody
from central.saga import SagaBusy, SagaRecord
from central.timeutil import iso_ms
from central.web import parse_body

routes = web.RouteTableDef()


@routes.post("/api/reserve")
@answers(Reserved)
async def reserve(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[backends_key])
    body = await parse_body(request, ReserveBody)
    runtime = runtime_of(request)
    limit = runtime.settings.reserve_rate_limit
    await runtime.rate_limits.hit("reserve", principal.user_id, limit=limit, window_s=60)

    async def run() -> Answer:
        seat_id = str(body.seat_id)
        seat = await runtime.backends.inventory.seat(seat_id)
        # Cheap refusals before a saga exists (ReserveSeat still decides any race).
        if seat.status in ("SOLD", "CHECKED_IN"):
            raise ApiError("SEAT_ALREADY_SOLD", "the seat is sold")
        if seat.status == "HELD" and seat.held_until_ms > time.time() * 1000:
            raise ApiError("SEAT_UNAVAILABLE", "the seat is held by another buyer")
        event = await runtime.events.get(seat.event_id)
        if event.get("status", "SCHEDULED") != "SCHEDULED":
            raise ApiError("EVENT_CANCELLED", "the event is cancelled")
        if datetime.fromisoformat(event["doors_close"]) <= datetime.now(UTC):
            raise ApiError("EVENT_ENDED", "the event is over")
        price = event["pricing"].get(seat.category)
        if price is None:
            raise ApiError("SEAT_UNAVAILABLE", "the seat has no price")
        ttl = runtime.settings.hold_ttl
        order_id = str(uuid.uuid4())
        record = await runtime.runner.start(
            KIND,
            {
                "seat_id": seat_id,
                "event_id": seat.event_id,
                "user_id": principal.user_id,
                "flagged": principal.is_flagged,
                "hold_id": str(uuid.uuid4()),
                "order_id": order_id,
                "price": int(price),
                "ttl": ttl,
            },
            deadline=time.time() + ttl,
            reference_id=order_id,
        )
        held_until_ms = int(record.outputs["reserve_seat"]["held_until_ms"])
        return 200, envelope(
            Reserved(
                order_id=order_id,
                seat_id=seat_id,
                event_id=seat.event_id,
                status="HELD",
                held_until=iso_ms(held_until_ms),
                ttl_seconds=ttl,
                price=int(price),
            )
        )

    return await with_idempotency(request, principal, run)


async def _purchase_saga(runtime: Runtime, principal: Principal, order_id: str) -> SagaRecord:
    """The order's purchase saga; its log names the buyer, so no call to orders is needed."""
    record = await runtime.runner.find_by_reference(order_id)
    if record is None or record.kind != KIND:
        raise ApiError("ORDER_NOT_FOUND", "no such order")
    if record.data["user_id"] != principal.user_id:
        raise ApiError("FORBIDDEN", "this order belongs to someone else")
    return record


def _ended(record: SagaRecord) -> ApiError:
    if record.status == "COMPLETED":
        return ApiError("ORDER_ALREADY_CONFIRMED", "this order is already paid")
    return record.error() or ApiError("HOLD_EXPIRED", "this order failed")


@routes.post("/api/pay")
@answers(Paid)
async def pay(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[backends_key])
    body = await parse_body(request, PayBody)
    runtime = runtime_of(request)

    async def run() -> Answer:
        order_id = str(body.order_id)
        # The usual case, the buyer paying their own held order: taken and run from one read.
        with suppress(SagaBusy):  # lost the lease mid-phase: the loop below waits it out
            done = await runtime.runner.run_own_waiting_phase(
                order_id, KIND, "pay", owner=principal.user_id, not_after=time.time()
            )
            if done is not None:
                return 200, envelope(Paid.model_validate(done.result))
        # Everything else (not found, someone else's, busy, ended, expired) is told apart here.
        record = await _purchase_saga(runtime, principal, order_id)
        while True:
            if record.status in ("RUNNING", "COMPENSATING"):
                record = await settled(runtime, record.saga_id)
            if record.status in ("COMPLETED", "FAILED"):
                raise _ended(record)
            if record.status != "WAITING":
                raise ApiError("SERVICE_UNAVAILABLE", "the order is busy; try again")
            try:
                if record.deadline is not None and record.deadline < time.time():
                    record = await runtime.runner.compensate(record.saga_id, _hold_expired())
                    raise _ended(record)
                done = await runtime.runner.run_phase(record.saga_id, "pay")
            except SagaBusy:  # another request (or runner) got there first: wait for it
                record = await settled(runtime, record.saga_id)
                continue
            return 200, envelope(Paid.model_validate(done.result))

    return await with_idempotency(request, principal, run)


def _hold_expired() -> ApiError:
    return ApiError("HOLD_EXPIRED", "the seat hold expired before payment")


@routes.post("/api/verify-otp")
@answers(OtpVerified)
async def verify_otp(request: web.Request) -> OtpVerified:
    principal = await authenticate(request, request.app[backends_key])
    body = await parse_body(request, VerifyOtpBody)
    runtime = runtime_of(request)
    if body.context != "purchase":
        raise ApiError(
            "VALIDATION_ERROR", "context: transfer codes are confirmed at /api/transfer/confirm"
        )
    order_id = str(body.reference_id)
    record = await _purchase_saga(runtime, principal, order_id)
    if record.status in ("COMPLETED", "FAILED"):
        raise _ended(record)
    try:
        await runtime.backends.users.verify_otp(
            principal.user_id, "purchase", order_id, body.otp_code
        )
    except ApiError as err:
        if err.code == "OTP_MAX_RETRIES":
            await fail_waiting(runtime, record.saga_id, err)  # compensates 3, 2, 1
        raise
    return OtpVerified(verified=True)
