"""Money out, for admins: cancel an event (every confirmed order refunded), refund one ticket,
close a dispute. Each runs a saga (sagas/refunds.py, sagas/disputes.py) that recovery finishes
after a crash; asking again answers the finished saga's result instead of starting anew."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from central.errors import ApiError
from central.orchestrator.answer_models import DisputeClosed, EventCancelled, OrderRefunded
from central.orchestrator.answers import answers
from central.orchestrator.auth import authenticate, require_role
from central.orchestrator.keys import backends_key
from central.orchestrator.runtime import Runtime
from central.orchestrator.saga_requests import runtime_of, settled
from central.orchestrator.sagas.disputes import KIND_CLOSE
from central.orchestrator.sagas.refunds import KIND_CANCEL, KIND_REFUND
from central.web import parse_body, parse_uuid

routes = web.RouteTableDef()

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class CancelBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    reason: Reason


class CloseBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    reason: Reason = "dispute closed by an admin"


async def _admin(request: web.Request) -> str:
    principal = await authenticate(request, request.app[backends_key])
    require_role(principal, "admin")
    return principal.user_id


async def _run_once(
    runtime: Runtime, kind: str, reference: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Start the saga, or answer the one already done (or being done) for this reference."""
    record = await runtime.runner.find_by_reference(reference)
    if record is not None and record.kind == kind and record.status != "FAILED":
        record = await settled(runtime, record.saga_id)
        if record.status == "COMPLETED":
            return dict(record.result)
        if record.status != "FAILED":
            raise ApiError(
                "SAGA_IN_PROGRESS",
                "this is being done now (or will be finished by recovery); ask again shortly",
                {"saga_id": record.saga_id, "status": record.status},
            )
    done = await runtime.runner.start(kind, data, reference_id=reference)
    return dict(done.result)


@routes.post("/api/admin/events/{event_id}/cancel")
@answers(EventCancelled)
async def cancel_event(request: web.Request) -> EventCancelled:
    admin_id = await _admin(request)
    event_id = parse_uuid(request.match_info["event_id"], "event_id")
    body = await parse_body(request, CancelBody)
    runtime = runtime_of(request)
    await runtime.backends.events.event(event_id)  # EVENT_NOT_FOUND first
    data = {"event_id": event_id, "reason": body.reason, "admin_user_id": admin_id}
    return EventCancelled.model_validate(
        await _run_once(runtime, KIND_CANCEL, f"cancel:{event_id}", data)
    )


@routes.post("/api/admin/orders/{order_id}/refund")
@answers(OrderRefunded)
async def refund_order(request: web.Request) -> OrderRefunded:
    admin_id = await _admin(request)
    order_id = parse_uuid(request.match_info["order_id"], "order_id")
    runtime = runtime_of(request)
    order = await runtime.backends.orders.order(order_id)
    if order["status"] not in ("CONFIRMED", "REFUNDED"):
        raise ApiError(
            "ORDER_INVALID_STATE",
            f"only a CONFIRMED order can be refunded; this one is {order['status']}",
            {"status": order["status"]},
        )
    data = {"order_id": order_id, "admin_user_id": admin_id}
    return OrderRefunded.model_validate(
        await _run_once(runtime, KIND_REFUND, f"refund:{order_id}", data)
    )


@routes.post("/api/admin/transfers/{transfer_id}/close")
@answers(DisputeClosed)
async def close_dispute(request: web.Request) -> DisputeClosed:
    admin_id = await _admin(request)
    transfer_id = parse_uuid(request.match_info["transfer_id"], "transfer_id")
    body = await parse_body(request, CloseBody)
    runtime = runtime_of(request)
    transfer = await runtime.backends.orders.transfer(transfer_id)
    if transfer["status"] != "DISPUTED":
        raise ApiError(
            "TRANSFER_INVALID_STATE",
            f"only a DISPUTED transfer can be closed; this one is {transfer['status']}",
            {"status": transfer["status"]},
        )
    data = {
        "transfer_id": transfer_id,
        "credits_amount": int(transfer["credits_amount"]),
        "reason": body.reason,
        "admin_user_id": admin_id,
    }
    # A dispute may be opened again after a close: each close is its own saga.
    done = await runtime.runner.start(KIND_CLOSE, data, reference_id=f"close:{transfer_id}")
    return DisputeClosed.model_validate(done.result)
