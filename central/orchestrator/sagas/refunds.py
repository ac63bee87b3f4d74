"""Money out: the event cancellation saga and the single-ticket refund saga (ARCHITECTURE §10
"Money": cancellation and refunds are sagas in the orchestrator).

Both only go forward: their first step (the pivot) already tells the world (the event is
CANCELLING; the order is being refunded), so after a crash recovery finishes them, never rolls them
back. Every effect is idempotent by a key that belongs to the ORDER, not to the saga, so a single
refund and a cancellation of the same event can never pay an order back twice:

  refund one order      1 RefundSeat at the seat's current owner epoch, unless the seat is sold
                          again to another CONFIRMED order (it moved on after our refund)
                        2 ledger REFUND  key `refund:<order id>` (a repeat is a replay)
                        3 order CONFIRMED -> REFUNDED (a repeat answers the row unchanged)
                        The seat goes first: a seat is SOLD or CHECKED_IN only while its order is
                        CONFIRMED, which is what lets verification judge "paid" from the seat
                        alone (verification.py). Freed first, its codes answer CANCELLED from
                        the first effect on, and a crash between effects never leaves a sold
                        seat whose order is no longer CONFIRMED. The order goes last: until it
                        is REFUNDED the cancellation lists it among the CONFIRMED orders and
                        refunds it again (every effect a repeat), so no crash loses a payback.

cancel_event (saga id = uuid5(cancel:<event id>))
  1 mark_cancelling   event SCHEDULED -> CANCELLING: no new reservation starts (the pivot)
  2 end_transfers     every waiting transfer of its seats compensated (FAILED)
  3 end_holds         every HELD seat released (a waiting purchase then fails at payment and
                      pays itself back through its own compensation)
  4 wait_caches       until CANCELLING is older than the event cache's TTL on every replica
  5 refund_all        every CONFIRMED order refunded as above, then every seat still HELD, SOLD
                      or CHECKED_IN swept, repeated until a pass finds nothing left
  6 mark_cancelled    event -> CANCELLED; the answer counts the event's refunded orders

order_refund (saga id = uuid5(refund:<order id>))
  1 check_order       the order is CONFIRMED (or already REFUNDED: finish the job)
  2 end_transfers     waiting transfers of its seat compensated
  3 refund            the three effects above (pivot)
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from central.clients.inventory import SeatMovedOn
from central.clients.models import Order, Transfer
from central.errors import ApiError
from central.faults import fault_point
from central.orchestrator.backends import Backends
from central.orchestrator.event_cache import EVENT_CACHE_TTL, EventCache
from central.saga import SagaBusy, SagaContext, SagaDefinition, SagaRunner, Step

log = logging.getLogger(__name__)

KIND_CANCEL = "cancel_event"
KIND_REFUND = "order_refund"
NAMESPACE = uuid.UUID("6f1f4bd2-52c4-4a59-9a4e-2a8d3f0f5c11")
SWEEP_ROUNDS = 50
PAGE = 500
TRANSFER_PAGE = 1000
WAITING_TRANSFER = ("INITIATED", "PENDING_OTP")
TICKET_STATES = ("SOLD", "CHECKED_IN")
EVENT_CANCELLED = ApiError("EVENT_CANCELLED", "the event was cancelled")
TICKET_REFUNDED = ApiError("SEAT_UNAVAILABLE", "the ticket was refunded")


def cancel_saga_id(event_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"cancel:{event_id}"))


def refund_saga_id(order_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"refund:{order_id}"))


def refund_key(order_id: str) -> str:
    """The ledger key of an order's refund: one per order, whichever saga pays it back."""
    return f"refund:{order_id}"


class StillBusy(Exception):
    """Something of the event is still in flight (a purchase paying, a transfer completing):
    the step fails, and recovery runs it again later."""


class Refunds:
    """The shared effects of both sagas."""

    def __init__(
        self, backends: Backends, events: EventCache, runner: Callable[[], SagaRunner]
    ) -> None:
        self.backends = backends
        self.events = events
        self.runner = runner

    async def event_seats(self, event_id: str, statuses: tuple[str, ...] = ()) -> list[Any]:
        return await self.backends.inventory.list_seats(
            event_id=event_id, statuses=statuses, timeout=30
        )

    async def set_event_status(self, event_id: str, status: str, reason: str | None) -> None:
        await self.backends.events.set_event_status(event_id, status, reason)
        self.events.forget(event_id)

    async def waiting_transfers(self, seat_ids: set[str]) -> list[Transfer]:
        """Waiting transfers of these seats: one platform-wide list per status while it fits in
        a page, else one query per seat."""
        found: list[Transfer] = []
        for status in WAITING_TRANSFER:
            rows = await self.backends.orders.transfers(status=status, limit=TRANSFER_PAGE)
            if len(rows) >= TRANSFER_PAGE:
                break  # more than a page: ask seat by seat below
            found.extend(t for t in rows if t["seat_id"] in seat_ids)
        else:
            return found
        found = []
        for seat_id in sorted(seat_ids):
            rows = await self.backends.orders.transfers(seat_id=seat_id, limit=20)
            found.extend(t for t in rows if t["status"] in WAITING_TRANSFER)
        return found

    async def end_transfers(self, seat_ids: set[str], why: ApiError = EVENT_CANCELLED) -> int:
        """Compensate every waiting transfer of these seats. A transfer being completed right now
        is left to finish (StillBusy): its seat then moves, and the refund follows the seat."""
        ended = 0
        busy = False
        for transfer in await self.waiting_transfers(seat_ids):
            try:
                await self.runner().compensate(transfer["transfer_id"], why)
                ended += 1
            except SagaBusy:
                busy = True
            except KeyError:
                # no saga (should not happen): end the record itself
                await self.backends.orders.transition_transfer(
                    transfer["transfer_id"], "FAILED", reason=why.message
                )
                ended += 1
        if busy:
            raise StillBusy("a transfer of this event is being completed")
        return ended

    async def release_holds(self, event_id: str) -> int:
        released = 0
        for seat in await self.event_seats(event_id, ("HELD",)):
            released += int(await self.backends.inventory.release_seat(seat.seat_id, seat.hold_id))
        return released

    async def purchase_in_flight(self, order_id: str) -> bool:
        record = await self.runner().find_by_reference(order_id)
        return record is not None and record.status in ("RUNNING", "COMPENSATING")

    async def refund_order(self, order: Order) -> None:
        """Free one CONFIRMED order's seat, pay the order back, mark it REFUNDED; every effect
        idempotent, in this order (the module's docstring says why)."""
        order_id = order["order_id"]
        await self.free_seat(order["seat_id"], refunding=order_id)
        fault_point("refund.after_seat")
        amount = int(order["credits_charged"])
        if amount > 0:
            await self.backends.users.refund(
                order["user_id"], amount, refund_key(order_id), order_id
            )
        fault_point("refund.after_credit")
        await self.backends.orders.transition_order(order_id, "REFUNDED", reason="refunded")

    async def free_seat(self, seat_id: str, *, refunding: str | None = None) -> bool:
        """The seat of a refunded order (``refunding``, still CONFIRMED while its refund runs)
        back to AVAILABLE with a new owner epoch (its codes then answer CANCELLED). Not when it
        belongs to another CONFIRMED order (sold again after our refund freed it)."""
        seat = await self.backends.inventory.seat(seat_id)
        for _ in range(5):
            if seat.status not in TICKET_STATES:
                return False
            current = await self.backends.orders.orders(seat_id=seat_id, status="CONFIRMED")
            if any(o["order_id"] != refunding for o in current):
                return False  # sold again after our refund: that sale is someone else's
            refunded = await self.backends.inventory.refund_seat(seat_id, seat.owner_epoch)
            if not isinstance(refunded, SeatMovedOn):
                return refunded
            seat = refunded.seat  # the epoch moved on: judge the seat as the refusal shows it
        raise StillBusy(f"seat {seat_id} keeps changing owner")

    async def confirmed_orders(self, event_id: str) -> list[Order]:
        return await self.backends.orders.orders(event_id=event_id, status="CONFIRMED", limit=PAGE)

    async def heartbeat(self, saga_id: str) -> None:
        await self.runner().heartbeat(saga_id)

    async def refund_all(self, event_id: str, saga_id: str) -> dict[str, int]:
        """Refund every confirmed order of the event and sweep its seats until nothing is left."""
        refunded = freed = 0
        for _ in range(SWEEP_ROUNDS):
            waiting = False
            for order in await self.confirmed_orders(event_id):
                if await self.purchase_in_flight(order["order_id"]):
                    waiting = True  # it finishes (then we refund it) or rolls itself back
                    continue
                await self.refund_order(order)
                refunded += 1
                if refunded % 20 == 0:
                    await self.heartbeat(saga_id)  # a long step keeps its lease
            await self.release_holds(event_id)
            for seat in await self.event_seats(event_id, TICKET_STATES):
                orders = await self.backends.orders.orders(seat_id=seat.seat_id, status="CONFIRMED")
                if orders:
                    waiting = True  # refunded on the next pass
                    continue
                freed += int(await self.free_seat(seat.seat_id))
            if not waiting and not await self.confirmed_orders(event_id):
                left = await self.event_seats(event_id, ("HELD", *TICKET_STATES))
                if not left:
                    return {"refunded": refunded, "seats_freed": freed}
            await self.heartbeat(saga_id)
            await asyncio.sleep(0.2)
        raise StillBusy(f"event {event_id}: sales still in flight after {SWEEP_ROUNDS} passes")


def _busy_to_retry(exc: StillBusy) -> ApiError:
    return ApiError("SERVICE_UNAVAILABLE", f"{exc}; it is finished in the background")


def cancel_event_saga(refunds: Refunds) -> SagaDefinition:
    async def mark_cancelling(ctx: SagaContext) -> Any:
        d = ctx.data
        await refunds.set_event_status(d["event_id"], "CANCELLING", d.get("reason"))
        return {"at": time.time()}

    async def end_transfers(ctx: SagaContext) -> Any:
        seats = await refunds.event_seats(ctx.data["event_id"])
        try:
            ended = await refunds.end_transfers({s.seat_id for s in seats})
        except StillBusy as exc:
            raise _busy_to_retry(exc) from None
        return {"ended": ended}

    async def end_holds(ctx: SagaContext) -> Any:
        return {"released": await refunds.release_holds(ctx.data["event_id"])}

    async def wait_caches(ctx: SagaContext) -> Any:
        # After this no orchestrator can still see the event SCHEDULED and start a sale.
        until = ctx.results["mark_cancelling"]["at"] + EVENT_CACHE_TTL + 0.5
        while (left := until - time.time()) > 0:
            await refunds.heartbeat(ctx.saga_id)
            await asyncio.sleep(min(left, 0.5))
        return {"until": until}

    async def refund_all(ctx: SagaContext) -> Any:
        try:
            return await refunds.refund_all(ctx.data["event_id"], ctx.saga_id)
        except StillBusy as exc:
            raise _busy_to_retry(exc) from None

    async def mark_cancelled(ctx: SagaContext) -> Any:
        d = ctx.data
        await refunds.set_event_status(d["event_id"], "CANCELLED", None)
        stats = await refunds.backends.orders.stats(d["event_id"])
        return {  # the saga's answer
            "event_id": d["event_id"],
            "status": "CANCELLED",
            "orders_refunded": int(stats["orders_by_status"].get("REFUNDED", 0)),
            "reason": d.get("reason"),
        }

    return SagaDefinition(
        kind=KIND_CANCEL,
        phases={
            "cancel": [
                Step("mark_cancelling", mark_cancelling),
                Step("end_transfers", end_transfers),
                Step("end_holds", end_holds),
                Step("wait_caches", wait_caches),
                Step("refund_all", refund_all),
                Step("mark_cancelled", mark_cancelled),
            ]
        },
        forward_phases=frozenset({"cancel"}),
        pivot="mark_cancelling",
    )


def order_refund_saga(refunds: Refunds) -> SagaDefinition:
    backends = refunds.backends

    async def check_order(ctx: SagaContext) -> Any:
        order = await backends.orders.order(ctx.data["order_id"])
        if order["status"] not in ("CONFIRMED", "REFUNDED"):
            raise ApiError(
                "ORDER_INVALID_STATE",
                f"only a CONFIRMED order can be refunded; this one is {order['status']}",
                {"status": order["status"]},
            )
        kept = {
            "order_id": order["order_id"],
            "user_id": order["user_id"],
            "seat_id": order["seat_id"],
            "event_id": order["event_id"],
            "credits_charged": order["credits_charged"],
        }
        return {"status": order["status"], "order": kept}

    async def end_transfers(ctx: SagaContext) -> Any:
        try:
            seat_id = ctx.results["check_order"]["order"]["seat_id"]
            ended = await refunds.end_transfers({seat_id}, TICKET_REFUNDED)
        except StillBusy as exc:
            raise _busy_to_retry(exc) from None
        return {"ended": ended}

    async def refund(ctx: SagaContext) -> Any:
        order = ctx.results["check_order"]["order"]
        try:
            await refunds.refund_order(order)
        except StillBusy as exc:
            raise _busy_to_retry(exc) from None
        return {  # the saga's answer
            "order_id": order["order_id"],
            "status": "REFUNDED",
            "seat_id": order["seat_id"],
            "credits_refunded": int(order["credits_charged"]),
            "user_id": order["user_id"],
        }

    return SagaDefinition(
        kind=KIND_REFUND,
        phases={
            "refund": [
                Step("check_order", check_order),
                Step("end_transfers", end_transfers),
                Step("refund", refund),
            ]
        },
        forward_phases=frozenset({"refund"}),
        pivot="end_transfers",
    )
