"""Disputes hold the money: opening one keeps the disputed amount back in the seller's balance (a
ledger hold that no debit can use) until an admin reverses the transfer (the reverse saga returns
the credits and ends the hold in one ledger transaction) or closes the dispute (the hold ends).

dispute_open                                      compensation
  1 hold_credits   hold `credits_amount` of the     release it (only a hold this saga made)
                   seller's credits, reference
                   `dispute:<transfer id>`
  2 mark_disputed  transfer COMPLETED -> DISPUTED   — the pivot (a refusal compensates 1)
                   (the orders index now keeps
                   the seat from being passed on)
dispute_close (recovered forward)
  1 mark_closed    transfer DISPUTED -> COMPLETED   —
  2 release_hold   the hold ends                    —
"""

from __future__ import annotations

from typing import Any

from central.errors import ApiError
from central.orchestrator.backends import Backends
from central.saga import SagaContext, SagaDefinition, Step

KIND_OPEN = "dispute_open"
KIND_CLOSE = "dispute_close"


def hold_reference(transfer_id: str) -> str:
    return f"dispute:{transfer_id}"


def dispute_open_saga(backends: Backends) -> SagaDefinition:
    users, orders = backends.users, backends.orders

    async def hold_credits(ctx: SagaContext) -> Any:
        d = ctx.data
        if d["credits_amount"] == 0:
            return {"created": False, "amount": 0}  # a gift: no money to keep back
        hold = await users.hold_credits(
            d["seller_user_id"], d["credits_amount"], hold_reference(d["transfer_id"])
        )
        return {"created": bool(hold["created"]), "amount": d["credits_amount"]}

    async def release(ctx: SagaContext) -> None:
        done = ctx.results.get("hold_credits")
        if done is not None and not done.get("created"):
            return  # the hold was there before us (a concurrent open): not ours to end
        await users.release_credits(hold_reference(ctx.data["transfer_id"]))

    async def mark_disputed(ctx: SagaContext) -> Any:
        d = ctx.data
        record = await orders.transition_transfer(d["transfer_id"], "DISPUTED", reason=d["reason"])
        return {**record, "held_credits": d["credits_amount"]}  # the saga's answer

    return SagaDefinition(
        kind=KIND_OPEN,
        phases={
            "open": [
                Step("hold_credits", hold_credits, release),
                Step("mark_disputed", mark_disputed),
            ]
        },
        pivot="mark_disputed",
    )


def dispute_close_saga(backends: Backends) -> SagaDefinition:
    users, orders = backends.users, backends.orders

    async def mark_closed(ctx: SagaContext) -> Any:
        d = ctx.data
        record = await orders.transfer(d["transfer_id"])
        if record["status"] not in ("DISPUTED", "COMPLETED"):
            raise ApiError(
                "TRANSFER_INVALID_STATE",
                f"only a DISPUTED transfer can be closed; this one is {record['status']}",
                {"status": record["status"]},
            )
        await orders.transition_transfer(d["transfer_id"], "COMPLETED", reason=d["reason"])
        return {"status": "COMPLETED"}

    async def release_hold(ctx: SagaContext) -> Any:
        d = ctx.data
        answer = await users.release_credits(hold_reference(d["transfer_id"]))
        hold = answer["hold"]
        released = int(hold["amount"]) if answer["released"] and hold is not None else 0
        return {  # the saga's answer
            "transfer_id": d["transfer_id"],
            "status": "COMPLETED",
            "dispute": "CLOSED",
            "credits_released": released if released else d.get("credits_amount", 0),
        }

    return SagaDefinition(
        kind=KIND_CLOSE,
        phases={
            "close": [
                Step("mark_closed", mark_closed),
                Step("release_hold", release_hold),
            ]
        },
        forward_phases=frozenset({"close"}),
        pivot="mark_closed",
    )
