"""Scenario 2, the transfer saga (seed Scenario 2), and the admin's reverse of a disputed transfer.

The saga id is the transfer id, so every step's idempotency key is `transfer id : step`.

initiate phase                                        compensation (seed matrix row)
  1 create_record  orders POST /transfers INITIATED    transfer → FAILED   ("record create")
  2 send_otps      one challenge per party             — (1's FAILED)      ("OTP send")
  3 await_otp      transfer → PENDING_OTP              — (1's FAILED)
the saga WAITS (deadline = transfer_ttl; past it the sweep ends it FAILED) while each party confirms
with its own code at /api/transfer/confirm ("OTP verify": 3 wrong codes compensate the saga)
complete phase (recovered forward: every step is idempotent)
  4 check_consent  both parties' flags on the record   —
  5 move_credits   ledger transfer buyer → seller      the reverse transfer, only if the debit exists
                   (402 ends the transfer FAILED)                          ("credit transfer")
  6 update_owner   UpdateOwner CAS seller → buyer      — the pivot: a CAS takes effect whole or not
                   (a refusal compensates 5 and 1)                         ("UpdateOwner")
  7 mark_completed transfer → COMPLETED                — past the pivot: retried until it lands,
                                                         logged CRITICAL  ("final status update")

reverse phase (KIND_REVERSE; recovered forward)
  1 check_disputed the transfer is DISPUTED            —
  2 return_seat    UpdateOwner CAS buyer → seller      UpdateOwner back, only if this step moved it
                   (a definite refusal: Refused, no undo)
  3 return_credits ledger transfer seller → buyer      — the pivot (a 402 compensates 2)
  4 mark_reversed  transfer → REVERSED                 —
"""

from __future__ import annotations

import logging
from typing import Any

from central.clients.inventory import SeatMovedOn
from central.errors import ApiError
from central.orchestrator.backends import Backends
from central.orchestrator.sagas.disputes import hold_reference
from central.saga import Abort, Pause, Refused, SagaContext, SagaDefinition, Step

log = logging.getLogger(__name__)

KIND = "transfer"
KIND_REVERSE = "transfer_reverse"
OTP_PURPOSE = "transfer"
TRANSFER_EXPIRED = ApiError(
    "TRANSFER_EXPIRED", "the transfer was not confirmed by both parties in time"
)


def reverse_credits_key(transfer_id: str) -> str:
    """One key per transfer, not per saga: two reverse attempts can return the credits once."""
    return f"{transfer_id}:reverse_credits"


async def move_seat(backends: Backends, seat_id: str, expected: str, new: str) -> int:
    """UpdateOwner CAS; a repeat after it took effect (owner already `new`) counts as done.
    Answers the owner epoch; SEAT_UNAVAILABLE when the seat moved on or was checked in."""
    moved = await backends.inventory.update_owner(seat_id, expected, new)
    if not isinstance(moved, SeatMovedOn):
        return int(moved.owner_epoch)
    current = moved.seat  # as it stood when refused: no second read
    if current.status == "SOLD" and current.owner_user_id == new:
        return int(current.owner_epoch)  # our earlier try took effect
    raise ApiError(
        "SEAT_UNAVAILABLE",
        "the seat has moved on or was checked in",
        {"seat_id": seat_id, "status": current.status},
    )


def transfer_saga(backends: Backends) -> SagaDefinition:
    users, orders = backends.users, backends.orders

    async def create_record(ctx: SagaContext) -> Any:
        d = ctx.data
        record = await orders.create_transfer(
            d["transfer_id"],
            d["seat_id"],
            d["seller_user_id"],
            d["buyer_user_id"],
            d["credits_amount"],
            "SELLER",
        )
        return {"status": record["status"]}

    async def fail_record(ctx: SagaContext) -> None:
        try:
            await orders.transition_transfer(
                ctx.data["transfer_id"], "FAILED", reason="transfer rolled back"
            )
        except ApiError as exc:
            if exc.code != "TRANSFER_NOT_FOUND":  # never created: nothing to undo
                raise

    async def send_otps(ctx: SagaContext) -> Any:
        d = ctx.data
        sent = {}
        for party in ("seller", "buyer"):
            challenge = await users.send_otp(d[f"{party}_user_id"], OTP_PURPOSE, d["transfer_id"])
            sent[party] = challenge["expires_at"]
        return sent

    async def await_otp(ctx: SagaContext) -> Any:
        record = await orders.transition_transfer(ctx.data["transfer_id"], "PENDING_OTP")
        return {"status": record["status"]}

    async def check_consent(ctx: SagaContext) -> Any:
        record = await orders.transfer(ctx.data["transfer_id"])
        if record["status"] != "PENDING_OTP":
            raise Abort(
                ApiError(
                    "TRANSFER_INVALID_STATE",
                    f"transfer is {record['status']}",
                    {"status": record["status"]},
                )
            )
        if not (record["seller_confirmed"] and record["buyer_confirmed"]):
            raise Pause(ApiError("TRANSFER_INVALID_STATE", "both parties must confirm first"))
        return {"seller": True, "buyer": True}

    async def move_credits(ctx: SagaContext) -> Any:
        d = ctx.data
        if d["credits_amount"] == 0:
            return {"moved": 0}  # a gift: no ledger entry
        try:
            moved = await users.move_credits(
                d["buyer_user_id"],
                d["seller_user_id"],
                d["credits_amount"],
                ctx.key("move_credits"),
                d["transfer_id"],
            )
        except ApiError as exc:
            if exc.code == "INSUFFICIENT_CREDITS":
                # Either party may read this answer: it must not carry the buyer's balance or id.
                raise Abort(
                    ApiError("INSUFFICIENT_CREDITS", "the buyer does not have enough credits")
                ) from None
            raise
        return {"moved": d["credits_amount"], "buyer_balance": moved["from_balance"]}

    async def return_moved_credits(ctx: SagaContext) -> None:
        d = ctx.data
        key = ctx.key("move_credits")
        if await users.entry(f"{key}:debit") is None:
            return  # the credits never moved
        await users.move_credits(
            d["seller_user_id"],
            d["buyer_user_id"],
            d["credits_amount"],
            f"{key}:undo",
            d["transfer_id"],
        )

    async def update_owner(ctx: SagaContext) -> Any:
        d = ctx.data
        epoch = await move_seat(backends, d["seat_id"], d["seller_user_id"], d["buyer_user_id"])
        return {"owner_epoch": epoch}

    async def mark_completed(ctx: SagaContext) -> Any:
        d = ctx.data
        try:
            await orders.transition_transfer(d["transfer_id"], "COMPLETED")
        except Exception:
            # Credits and ownership already moved together; only the record lags. Recovery
            # retries this step until it lands; until then it needs an operator's eye.
            log.critical(
                "transfer %s: credits and seat moved but the record is not COMPLETED; retrying",
                d["transfer_id"],
            )
            raise
        return {  # the saga's answer
            "transfer_id": d["transfer_id"],
            "status": "COMPLETED",
            "seat_id": d["seat_id"],
            "new_owner_user_id": d["buyer_user_id"],
            "credits_amount": d["credits_amount"],
        }

    return SagaDefinition(
        kind=KIND,
        phases={
            "initiate": [
                Step("create_record", create_record, fail_record),
                Step("send_otps", send_otps),
                Step("await_otp", await_otp),
            ],
            "complete": [
                Step("check_consent", check_consent),
                Step("move_credits", move_credits, return_moved_credits),
                Step("update_owner", update_owner),
                Step("mark_completed", mark_completed),
            ],
        },
        forward_phases=frozenset({"complete"}),
        pivot="update_owner",
        deadline_error=TRANSFER_EXPIRED,
    )


def reverse_saga(backends: Backends) -> SagaDefinition:
    users, orders = backends.users, backends.orders

    async def check_disputed(ctx: SagaContext) -> Any:
        record = await orders.transfer(ctx.data["transfer_id"])
        if record["status"] != "DISPUTED":
            raise ApiError(
                "TRANSFER_INVALID_STATE",
                f"only a DISPUTED transfer can be reversed; this one is {record['status']}",
                {"status": record["status"]},
            )
        return {"status": "DISPUTED"}

    async def return_seat(ctx: SagaContext) -> Any:
        d = ctx.data
        try:
            epoch = await move_seat(backends, d["seat_id"], d["buyer_user_id"], d["seller_user_id"])
        except ApiError as exc:
            if exc.code == "SEAT_UNAVAILABLE":
                raise Refused(exc) from None  # a definite refusal: nothing for 2's undo to do
            raise
        return {"owner_epoch": epoch}

    async def give_seat_back(ctx: SagaContext) -> None:
        d = ctx.data
        returned = ctx.results.get("return_seat")
        seat = await backends.inventory.seat(d["seat_id"])
        if seat.owner_user_id != d["seller_user_id"] or seat.status != "SOLD":
            return  # our move never took effect (or the seat went on): nothing to undo
        if returned is not None and seat.owner_epoch != returned["owner_epoch"]:
            return  # the seller holds it through a later change, not through our move
        try:
            await move_seat(backends, d["seat_id"], d["seller_user_id"], d["buyer_user_id"])
        except ApiError as exc:
            if exc.code != "SEAT_UNAVAILABLE":
                raise

    async def return_credits(ctx: SagaContext) -> Any:
        d = ctx.data
        if d["credits_amount"] == 0:
            return {"returned": 0}
        await users.move_credits(
            d["seller_user_id"],
            d["buyer_user_id"],
            d["credits_amount"],
            reverse_credits_key(d["transfer_id"]),
            d["transfer_id"],
            # The dispute's hold ends in the same ledger transaction: the money goes back
            # from held, never through spendable.
            release_hold=hold_reference(d["transfer_id"]),
        )
        return {"returned": d["credits_amount"]}

    async def mark_reversed(ctx: SagaContext) -> Any:
        d = ctx.data
        await orders.transition_transfer(
            d["transfer_id"], "REVERSED", reason="reversed by an admin"
        )
        return {  # the saga's answer
            "transfer_id": d["transfer_id"],
            "status": "REVERSED",
            "restored_owner_user_id": d["seller_user_id"],
            "credits_returned": d["credits_amount"],
        }

    return SagaDefinition(
        kind=KIND_REVERSE,
        phases={
            "reverse": [
                Step("check_disputed", check_disputed),
                Step("return_seat", return_seat, give_seat_back),
                Step("return_credits", return_credits),
                Step("mark_reversed", mark_reversed),
            ]
        },
        forward_phases=frozenset({"reverse"}),
        pivot="return_credits",
    )
