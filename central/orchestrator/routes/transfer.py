"""Transfer (saga 2): initiate by the seller, confirm by each party with its own code, read, dispute
by a party, reverse by an admin. The saga's log (saga id = transfer id) drives the money and the seat;
the orders service's transfer record is the state users see."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from central.clients.inventory import owned_and_sold
from central.clients.models import Transfer
from central.errors import ApiError
from central.faults import fault_point
from central.orchestrator.answer_models import (
    TransferConfirmed,
    TransferDisputed,
    TransferInitiated,
    TransferRecord,
    TransferReversed,
)
from central.orchestrator.answers import answers, envelope
from central.orchestrator.auth import Principal, authenticate, require_role
from central.orchestrator.idempotency import Answer
from central.orchestrator.keys import backends_key
from central.orchestrator.runtime import Runtime
from central.orchestrator.saga_requests import fail_waiting, runtime_of, settled, with_idempotency
from central.orchestrator.sagas.disputes import KIND_OPEN as KIND_DISPUTE
from central.orchestrator.sagas.transfer import (
    KIND,
    KIND_REVERSE,
    OTP_PURPOSE,
    TRANSFER_EXPIRED,
)
from central.orchestrator.schemas import (
    TransferConfirmBody,
    TransferDisputeBody,
    TransferInitiateBody,
    TransferReverseBody,
)
from central.saga import SagaBusy
from central.web import parse_body, parse_uuid

routes = web.RouteTableDef()
ACTIVE_TRANSFER = ("INITIATED", "PENDING_OTP")


async def _transfer(runtime: Runtime, transfer_id: str) -> Transfer:
    return await runtime.backends.orders.transfer(transfer_id)


def _party(transfer: Transfer, principal: Principal) -> str:
    if principal.user_id == transfer["seller_user_id"]:
        return "seller"
    if principal.user_id == transfer["buyer_user_id"]:
        return "buyer"
    raise ApiError("FORBIDDEN", "only the two parties of a transfer may do this")


def _invalid_state(transfer: Transfer, action: str) -> ApiError:
    return ApiError(
        "TRANSFER_INVALID_STATE",
        f"the transfer is {transfer['status']}; cannot {action}",
        {"status": transfer["status"], "transfer_id": transfer["transfer_id"]},
    )


@routes.post("/api/transfer/initiate")
@answers(TransferInitiated, 201)
async def initiate(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[backends_key])
    body = await parse_body(request, TransferInitiateBody)
    runtime = runtime_of(request)
    backends = runtime.backends

    async def run() -> Answer:
        # Validation: every check reads, none writes, so a refusal changes nothing.
        buyer = await backends.users.user_by_email(body.buyer_email)
        if buyer["user_id"] == principal.user_id:
            raise ApiError("SELF_TRANSFER", "you cannot transfer a ticket to yourself")
        seat_id = str(body.seat_id)
        seat = await backends.inventory.seat(seat_id)
        owned_and_sold(seat, principal.user_id, "transfer")
        live = await backends.orders.transfers(seat_id=seat_id, limit=20)
        if any(t["status"] == "DISPUTED" for t in live):
            raise ApiError("SEAT_DISPUTED", "this seat is under dispute; it cannot be passed on")
        if any(t["status"] in ACTIVE_TRANSFER for t in live):
            raise ApiError("TRANSFER_IN_PROGRESS", "this seat already has a transfer in progress")
        # No check of the buyer's balance here: its answer would tell the seller whether the
        # buyer has X credits. The credits move only once both consented (a 402 then, FAILED).
        transfer_id = str(uuid.uuid4())
        ttl = runtime.settings.transfer_ttl
        # The record's partial unique index settles two initiations racing past the check above.
        await runtime.runner.start(
            KIND,
            {
                "transfer_id": transfer_id,
                "seat_id": seat_id,
                "event_id": seat.event_id,
                "seller_user_id": principal.user_id,
                "buyer_user_id": buyer["user_id"],
                "credits_amount": body.credits_amount,
            },
            saga_id=transfer_id,
            deadline=time.time() + ttl,
            reference_id=transfer_id,
        )
        return 201, envelope(
            TransferInitiated(
                transfer_id=transfer_id,
                status="PENDING_OTP",
                seat_id=seat_id,
                seller_user_id=principal.user_id,
                buyer_user_id=buyer["user_id"],
                credits_amount=body.credits_amount,
                expires_in=ttl,
            )
        )

    return await with_idempotency(request, principal, run)


@routes.post("/api/transfer/confirm")
@answers(TransferConfirmed)
async def confirm(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[backends_key])
    body = await parse_body(request, TransferConfirmBody)
    runtime = runtime_of(request)
    transfer_id = str(body.transfer_id)

    async def run() -> Answer:
        record = await runtime.runner.get(transfer_id)
        if record is None or record.kind != KIND:
            raise ApiError("TRANSFER_NOT_FOUND", "no such transfer")
        transfer = await _transfer(runtime, transfer_id)
        party = _party(transfer, principal)
        if transfer["status"] != "PENDING_OTP":
            raise _invalid_state(transfer, "confirm")
        if record.status == "WAITING" and record.deadline and record.deadline < time.time():
            await fail_waiting(runtime, transfer_id, TRANSFER_EXPIRED)
            raise TRANSFER_EXPIRED
        # The caller's own challenge: the other party's code is simply a wrong code here.
        try:
            await runtime.backends.users.verify_otp(
                principal.user_id, OTP_PURPOSE, transfer_id, body.otp_code
            )
        except ApiError as err:
            if err.code == "OTP_MAX_RETRIES":
                await fail_waiting(runtime, transfer_id, err)
            raise
        # Say that completion should follow before recording the consent: if this request dies
        # after the second consent lands, recovery completes the transfer (or, with one consent
        # only, finds it still waiting for the other).
        await runtime.runner.request_phase(transfer_id, "complete")
        transfer = await runtime.backends.orders.confirm_party(transfer_id, party)
        fault_point("transfer.after_confirm_party")
        if not (transfer["seller_confirmed"] and transfer["buyer_confirmed"]):
            return 200, envelope(_pending(transfer))
        done = await _complete(runtime, transfer_id)
        return 200, envelope(TransferConfirmed.model_validate(done))

    return await with_idempotency(request, principal, run)


def _pending(transfer: Transfer) -> TransferConfirmed:
    return TransferConfirmed(
        transfer_id=transfer["transfer_id"],
        status="PENDING_OTP",
        seat_id=transfer["seat_id"],
        seller_confirmed=transfer["seller_confirmed"],
        buyer_confirmed=transfer["buyer_confirmed"],
        new_owner_user_id=None,
    )


async def _complete(runtime: Runtime, transfer_id: str) -> dict[str, Any]:
    """Both parties consented: run the complete phase (or wait for whoever runs it)."""
    while True:
        record = await settled(runtime, transfer_id)
        if record.status == "COMPLETED":
            return dict(record.result)
        if record.status == "FAILED":
            raise record.error() or ApiError("TRANSFER_INVALID_STATE", "the transfer failed")
        if record.status != "WAITING":
            raise ApiError("SERVICE_UNAVAILABLE", "the transfer is being completed; ask again")
        try:
            done = await runtime.runner.run_phase(transfer_id, "complete")
        except SagaBusy:
            continue
        return dict(done.result)


@routes.get("/api/transfers/{transfer_id}")
@answers(TransferRecord)
async def get_transfer(request: web.Request) -> TransferRecord:
    principal = await authenticate(request, request.app[backends_key])
    transfer_id = parse_uuid(request.match_info["transfer_id"], "transfer_id")
    transfer = await _transfer(runtime_of(request), transfer_id)
    if principal.role != "admin":
        _party(transfer, principal)
    return TransferRecord.model_validate(transfer)


@routes.post("/api/transfer/dispute")
@answers(TransferDisputed)
async def dispute(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[backends_key])
    body = await parse_body(request, TransferDisputeBody)
    runtime = runtime_of(request)
    transfer_id = str(body.transfer_id)

    async def run() -> Answer:
        transfer = await _transfer(runtime, transfer_id)
        _party(transfer, principal)
        if transfer["status"] != "COMPLETED":
            raise _invalid_state(transfer, "dispute it (only a COMPLETED transfer)")
        # A saga: the seller's proceeds are held first, and released again if the transfer
        # cannot become DISPUTED (sagas/disputes.py).
        done = await runtime.runner.start(
            KIND_DISPUTE,
            {
                "transfer_id": transfer_id,
                "seller_user_id": transfer["seller_user_id"],
                "credits_amount": int(transfer["credits_amount"]),
                "reason": body.reason,
                "opened_by": principal.user_id,
            },
            reference_id=f"dispute:{transfer_id}",
        )
        return 200, envelope(TransferDisputed.model_validate(done.result))

    return await with_idempotency(request, principal, run)


@routes.post("/api/transfer/reverse")
@answers(TransferReversed)
async def reverse(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[backends_key])
    require_role(principal, "admin")
    body = await parse_body(request, TransferReverseBody)
    runtime = runtime_of(request)
    transfer_id = str(body.transfer_id)

    async def run() -> Answer:
        transfer = await _transfer(runtime, transfer_id)
        if transfer["status"] != "DISPUTED":
            raise _invalid_state(transfer, "reverse it (only a DISPUTED transfer)")
        done = await runtime.runner.start(
            KIND_REVERSE,
            {
                "transfer_id": transfer_id,
                "seat_id": transfer["seat_id"],
                "seller_user_id": transfer["seller_user_id"],
                "buyer_user_id": transfer["buyer_user_id"],
                "credits_amount": int(transfer["credits_amount"]),
                "admin_user_id": principal.user_id,
            },
            reference_id=f"reverse:{transfer_id}",
        )
        return 200, envelope(TransferReversed.model_validate(done.result))

    return await with_idempotency(request, principal, run)
