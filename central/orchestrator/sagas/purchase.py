"""Scenario 1, the purchase saga (seed Scenario 1 with the order created at reserve).

reserve phase                           compensation
  1 reserve_seat  ReserveSeat(hold id)   ReleaseSeat(that hold)
  2 create_order  order PENDING          order → FAILED
  3 publish_hold  hold message (confirm) — (1's release; a message for a failed saga is ignored)
pay phase (recovered forward: every step is idempotent)
  4 send_otp      flagged users only:    — (a code for a failed order verifies nothing)
                  one challenge, recorded
  5 otp           flagged users only: a check, no effect (three wrong codes compensate the saga;
                  an expired code is replaced through /api/otp/resend)
  6 deduct        ledger debit (key)     refund, only if the debit exists (key family `…:refund`)
  7 confirm_order order CONFIRMED        order → FAILED (as a compensation)
  8 confirm_seat  ConfirmSeat(hold)      — (a failure here compensates 7, 6, 2, 1)
  9 ticket        the answer (its output is the saga's result)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import grpc

from central.clients.inventory import InventoryError
from central.errors import ApiError
from central.messaging import HoldQueue
from central.orchestrator.backends import Backends
from central.saga import Pause, SagaContext, SagaDefinition, Step
from proto import inventory_pb2 as pb

log = logging.getLogger(__name__)

KIND = "purchase"
HOLD_EXPIRED = ApiError("HOLD_EXPIRED", "the seat hold expired before payment")
RESERVE_ERRORS = {"SEAT_NOT_FOUND", "SEAT_ALREADY_SOLD", "SEAT_UNAVAILABLE", "HOLD_LIMIT_REACHED"}


def seat_error(exc: InventoryError) -> ApiError:
    if exc.reason in RESERVE_ERRORS:
        return ApiError(exc.reason, exc.detail.split(":", 1)[-1].strip())
    if exc.code == grpc.StatusCode.NOT_FOUND:
        return ApiError("SEAT_NOT_FOUND", "no such seat")
    return ApiError("SEAT_UNAVAILABLE", "the seat cannot be reserved now")


def _expired(expires_at: str | None) -> bool:
    if not expires_at:
        return True
    return datetime.fromisoformat(expires_at) <= datetime.now(UTC)


def flagged(data: Mapping[str, Any]) -> bool:
    """Flagged buyers confirm a purchase with a one-time code (fixed in the saga's input)."""
    return bool(data.get("flagged"))


def purchase_saga(
    backends: Backends, holds: HoldQueue | None, *, max_holds_per_user: int = 0
) -> SagaDefinition:
    """`max_holds_per_user`: inventory refuses a reserve past that many live holds of the buyer
    (0: no limit), counted in the reserving statement itself."""
    inventory, users, orders = backends.inventory, backends.users, backends.orders

    async def reserve_seat(ctx: SagaContext) -> Any:
        d = ctx.data
        try:
            seat = await inventory.call(
                "ReserveSeat",
                pb.ReserveSeatRequest(
                    seat_id=d["seat_id"],
                    user_id=d["user_id"],
                    hold_id=d["hold_id"],
                    ttl_seconds=d["ttl"],
                    max_active_holds=max_holds_per_user,
                ),
            )
        except InventoryError as exc:
            raise seat_error(exc) from None
        return {"held_until_ms": seat.held_until_ms}

    async def release_seat(ctx: SagaContext) -> None:
        await inventory.call(
            "ReleaseSeat",
            pb.ReleaseSeatRequest(seat_id=ctx.data["seat_id"], hold_id=ctx.data["hold_id"]),
        )

    async def create_order(ctx: SagaContext) -> Any:
        d = ctx.data
        order = await orders.call(
            "POST",
            "/orders",
            json={
                "order_id": d["order_id"],
                "user_id": d["user_id"],
                "seat_id": d["seat_id"],
                "event_id": d["event_id"],
                "credits_charged": d["price"],
                "hold_id": d["hold_id"],
            },
        )
        return {"status": order["status"]}

    async def fail_order(ctx: SagaContext) -> None:
        try:
            await orders.call(
                "POST",
                f"/orders/{ctx.data['order_id']}/transition",
                json={"to": "FAILED", "compensation": True, "reason": "purchase rolled back"},
            )
        except ApiError as exc:
            if exc.code != "ORDER_NOT_FOUND":  # never created: nothing to undo
                raise

    async def publish_hold(ctx: SagaContext) -> Any:
        if holds is None:
            return {"broker": False}  # embedded default: the deadline sweep is the mechanism
        d = ctx.data
        await holds.publish_hold(
            {
                "saga_id": ctx.saga_id,
                "seat_id": d["seat_id"],
                "hold_id": d["hold_id"],
                "order_id": d["order_id"],
            }
        )
        return {"broker": True}

    def otp_query(ctx: SagaContext) -> dict[str, Any]:
        d = ctx.data
        return {"user_id": d["user_id"], "purpose": "purchase", "reference_id": d["order_id"]}

    async def send_otp(ctx: SagaContext) -> Any:
        # The effect (a code sent), durable: recorded once, so paying again does not send again.
        challenge = await users.call("POST", "/otp/challenges", json=otp_query(ctx))
        return {"expires_at": challenge["expires_at"]}

    async def otp(ctx: SagaContext) -> Any:
        # A check only (non-durable: no effect, it simply runs again on every pay).
        try:
            status = await users.call("GET", "/otp/status", params=otp_query(ctx))
        except ApiError as exc:
            if exc.code != "OTP_NOT_FOUND":
                raise
            status = None
        if status and status.get("verified"):
            return {"verified": True}
        if status is None or _expired(status.get("expires_at")):
            raise Pause(
                ApiError(
                    "OTP_REQUIRED",
                    "the one-time code expired; ask for a new one (/api/otp/resend), verify it, "
                    "then pay again",
                )
            )
        raise Pause(ApiError("OTP_REQUIRED", "a one-time code was sent; verify it, then pay again"))

    async def deduct(ctx: SagaContext) -> Any:
        d = ctx.data
        try:
            entry = await users.call(
                "POST",
                "/credits/entries",
                json={
                    "user_id": d["user_id"],
                    "amount": -d["price"],
                    "kind": "PURCHASE",
                    "idempotency_key": ctx.key("deduct"),
                    "reference_id": d["order_id"],
                },
            )
        except ApiError as exc:
            if exc.code == "INSUFFICIENT_CREDITS":
                raise Pause(exc) from None  # the hold stays until it expires: the buyer may top up
            raise
        return {"entry_id": entry["entry_id"], "credit_balance": entry["credit_balance"]}

    async def refund(ctx: SagaContext) -> None:
        d = ctx.data
        try:
            debit = await users.call("GET", f"/credits/entries/{ctx.key('deduct')}")
        except ApiError as exc:
            if exc.code == "NOT_FOUND":
                return  # the debit never happened
            raise
        await users.call(
            "POST",
            "/credits/entries",
            json={
                "user_id": d["user_id"],
                "amount": -int(debit["amount"]),
                "kind": "REFUND",
                "idempotency_key": ctx.key("deduct") + ":refund",
                "reference_id": d["order_id"],
            },
        )

    async def confirm_order(ctx: SagaContext) -> Any:
        order = await orders.call(
            "POST", f"/orders/{ctx.data['order_id']}/transition", json={"to": "CONFIRMED"}
        )
        return {"status": order["status"]}

    async def confirm_seat(ctx: SagaContext) -> Any:
        d = ctx.data
        try:
            seat = await inventory.call(
                "ConfirmSeat",
                pb.ConfirmSeatRequest(
                    seat_id=d["seat_id"], user_id=d["user_id"], hold_id=d["hold_id"]
                ),
            )
        except InventoryError as exc:
            if exc.reason == "HOLD_EXPIRED":
                raise ApiError("HOLD_EXPIRED", "the seat hold expired before payment") from None
            raise ApiError("SEAT_NOT_HELD", "the seat is no longer held for this order") from None
        return {"owner_epoch": seat.owner_epoch}

    async def ticket(ctx: SagaContext) -> Any:
        d = ctx.data
        return {
            "order_id": d["order_id"],
            "seat_id": d["seat_id"],
            "status": "CONFIRMED",
            "credits_charged": d["price"],
            "remaining_balance": ctx.results["deduct"]["credit_balance"],
        }

    return SagaDefinition(
        kind=KIND,
        phases={
            "reserve": [
                Step("reserve_seat", reserve_seat, release_seat),
                Step("create_order", create_order, fail_order),
                Step("publish_hold", publish_hold),
            ],
            "pay": [
                Step("send_otp", send_otp, when=flagged),
                Step("otp", otp, durable=False, when=flagged),
                Step("deduct", deduct, refund),
                Step("confirm_order", confirm_order, fail_order),
                Step("confirm_seat", confirm_seat),
                Step("ticket", ticket, durable=False),
            ],
        },
        forward_phases=frozenset({"pay"}),
        pivot="confirm_seat",
        deadline_error=HOLD_EXPIRED,
    )
