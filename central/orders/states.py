"""The order and transfer state machines as data: which states each target may be reached from.

The store turns these tables into `UPDATE ... WHERE status IN (allowed_from)`, so the database,
not a read-then-write in Python, decides whether a transition happens.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class TransferStatus(StrEnum):
    INITIATED = "INITIATED"
    PENDING_OTP = "PENDING_OTP"
    COMPLETED = "COMPLETED"
    DISPUTED = "DISPUTED"
    REVERSED = "REVERSED"
    FAILED = "FAILED"


# from-state -> the states it may move to.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

# Only a saga compensating a purchase whose later step failed may fail a CONFIRMED order.
ORDER_COMPENSATION_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CONFIRMED: frozenset({OrderStatus.FAILED}),
}

TRANSFER_TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.INITIATED: frozenset({TransferStatus.PENDING_OTP, TransferStatus.FAILED}),
    TransferStatus.PENDING_OTP: frozenset({TransferStatus.COMPLETED, TransferStatus.FAILED}),
    TransferStatus.COMPLETED: frozenset({TransferStatus.DISPUTED}),
    TransferStatus.DISPUTED: frozenset({TransferStatus.REVERSED, TransferStatus.COMPLETED}),
    TransferStatus.REVERSED: frozenset(),
    TransferStatus.FAILED: frozenset(),
}

# A seat may carry at most one transfer in these states (a partial unique index enforces it).
ACTIVE_TRANSFER_STATES: tuple[TransferStatus, ...] = (
    TransferStatus.INITIATED,
    TransferStatus.PENDING_OTP,
)
# ...and a seat under dispute cannot be passed on (nor disputed while it is being passed on):
# the same index covers DISPUTED (orders migration step 2).
SEAT_BLOCKING_STATES: tuple[TransferStatus, ...] = (
    *ACTIVE_TRANSFER_STATES,
    TransferStatus.DISPUTED,
)


def order_sources(to: OrderStatus, *, compensation: bool = False) -> list[OrderStatus]:
    """The states an order may be in for a move to `to`."""
    sources = {s for s, targets in ORDER_TRANSITIONS.items() if to in targets}
    if compensation:
        sources |= {s for s, t in ORDER_COMPENSATION_TRANSITIONS.items() if to in t}
    return sorted(sources)


def transfer_sources(to: TransferStatus) -> list[TransferStatus]:
    """The states a transfer may be in for a move to `to`."""
    return sorted(s for s, targets in TRANSFER_TRANSITIONS.items() if to in targets)


def is_terminal_order(status: OrderStatus) -> bool:
    return not ORDER_TRANSITIONS[status]


def is_terminal_transfer(status: TransferStatus) -> bool:
    return not TRANSFER_TRANSITIONS[status]
