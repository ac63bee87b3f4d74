"""Operator calls: create an event with its seats, add a gate, grant credits, flag a user."""

from __future__ import annotations

from aiohttp import web

from central.errors import ApiError
from central.orchestrator import admin_ops
from central.orchestrator.answer_models import Balance, EventCreated, GateAdded, UpdatedUser
from central.orchestrator.answers import answers
from central.orchestrator.auth import Principal, access_tokens_key, authenticate, require_role
from central.orchestrator.keys import backends_key
from central.orchestrator.schemas import (
    AddGateBody,
    CreateEventBody,
    GrantCreditsBody,
    UpdateUserBody,
)
from central.web import parse_body, parse_uuid

routes = web.RouteTableDef()


async def _admin(request: web.Request) -> Principal:
    principal = await authenticate(request, request.app[backends_key])
    require_role(principal, "admin")
    return principal


@routes.post("/api/admin/events")
@answers(EventCreated, 201)
async def create_event(request: web.Request) -> EventCreated:
    await _admin(request)
    body = await parse_body(request, CreateEventBody)
    return EventCreated.model_validate(
        await admin_ops.create_event(request.app[backends_key], body)
    )


@routes.post("/api/admin/gates")
@answers(GateAdded, 201)
async def add_gate(request: web.Request) -> GateAdded:
    await _admin(request)
    body = await parse_body(request, AddGateBody)
    gate = await admin_ops.add_gate(request.app[backends_key], body.hall_id, body.name)
    return GateAdded.model_validate(gate)


@routes.post("/api/admin/credits/grant")
@answers(Balance)
async def grant(request: web.Request) -> Balance:
    await _admin(request)
    body = await parse_body(request, GrantCreditsBody)
    key = request.headers.get("Idempotency-Key")
    result = await admin_ops.grant_credits(
        request.app[backends_key], str(body.user_id), body.amount, key and f"grant:{key}"
    )
    return Balance.model_validate(result)


@routes.patch("/api/admin/users/{user_id}")
@answers(UpdatedUser)
async def update_user(request: web.Request) -> UpdatedUser:
    await _admin(request)
    user_id = parse_uuid(request.match_info["user_id"], "user_id")
    body = await parse_body(request, UpdateUserBody)
    if None not in (body.flagged, body.is_flagged) and body.flagged != body.is_flagged:
        raise ApiError(
            "VALIDATION_ERROR", "flagged: contradicts is_flagged; send one", {"field": "flagged"}
        )
    changes: dict[str, object] = {}
    flagged = body.flagged if body.flagged is not None else body.is_flagged
    if flagged is not None:
        changes["is_flagged"] = flagged
    if body.role is not None:
        changes["role"] = body.role
    user = await request.app[backends_key].users.update_user(user_id, changes)
    tokens = request.app.get(access_tokens_key)
    if tokens is not None:
        tokens.forget_holder(user_id)  # the new role or flag counts from the next request here
    return UpdatedUser.model_validate(
        {**user, "flagged": bool(user["is_flagged"]), "verified": bool(user["is_verified"])}
    )
