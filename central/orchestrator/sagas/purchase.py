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

from central.errors import ApiError
from central.messaging import HoldQueue
from central.orchestrator.backends import Backends
from central.saga import Pause, SagaContext, SagaDefinition, Step

log = logging.getLogger(__name__)

KIND = "purchase"
HOLD_EXPIRED = ApiError("HOLD_EXPIRED", "the seat hold expired before payment")


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
        seat = await inventory.reserve_seat(
            d["seat_id"], d["user_id"], d["hold_id"], d["ttl"], max_holds_per_user
        )
        return {"held_until_ms": seat.held_until_ms}

    async def release_seat(ctx: SagaContext) -> None:
        await inventory.release_seat(ctx.data["seat_id"], ctx.data["hold_id"])

    async def create_order(ctx: SagaContext) -> Any:
        d = ctx.data
        order = await orders.create_order(
            d["order_id"], d["user_id"], d["seat_id"], d["event_id"], d["price"], d["hold_id"]
        )
        return {"status": order["status"]}

    async def fail_order(ctx: SagaContext) -> None:
        try:
            await orders.transition_order(
                ctx.data["order_id"], "FAILED", reason="purchase rolled back", compensation=True
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

    async def send_otp(ctx: SagaContext) -> Any:
        # The effect (a code sent), durable: recorded once, so paying again does not send again.
        d = ctx.data
        challenge = await users.send_otp(d["user_id"], "purchase", d["order_id"])
        return {"expires_at": challenge["expires_at"]}

    async def otp(ctx: SagaContext) -> Any:
        # A check only (non-durable: no effect, it simply runs again on every pay).
        d = ctx.data
        status = await users.otp_status(d["user_id"], "purchase", d["order_id"])
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
            entry = await users.debit(d["user_id"], d["price"], ctx.key("deduct"), d["order_id"])
        except ApiError as exc:
            if exc.code == "INSUFFICIENT_CREDITS":
                raise Pause(exc) from None  # the hold stays until it expires: the buyer may top up
            raise
        return {"entry_id": entry["entry_id"], "credit_balance": entry["credit_balance"]}

    async def refund(ctx: SagaContext) -> None:
        d = ctx.data
        debit = await users.entry(ctx.key("deduct"))
        if debit is None:
            return  # the debit never happened
        key = ctx.key("deduct") + ":refund"
        await users.refund(d["user_id"], -int(debit["amount"]), key, d["order_id"])

    async def confirm_order(ctx: SagaContext) -> Any:
        order = await orders.transition_order(ctx.data["order_id"], "CONFIRMED")
        return {"status": order["status"]}

    async def confirm_seat(ctx: SagaContext) -> Any:
        d = ctx.data
        seat = await inventory.confirm_seat(d["seat_id"], d["user_id"], d["hold_id"])
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
