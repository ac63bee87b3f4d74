"""What the REST services answer, as types. TypedDicts: the decoded JSON is used as it is (no copy
on the hot path) while the type checker knows its keys. The fields are the services' own views
(central/users, central/orders, central/events); a service may add keys without breaking us."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the list's total size (as the service counted it)."""

    items: list[T]
    total: int
    pagination: dict[str, Any] | None  # the service's own pagination block, passed on as is


# ----- users -----
class User(TypedDict):
    user_id: str
    email: str
    phone: str | None
    role: str
    is_flagged: bool
    is_verified: bool
    credit_balance: int
    created_at: str | None


class TokenClaims(TypedDict):
    user_id: str
    email: str
    role: str
    is_flagged: bool
    jti: str
    expires_at: str


class LedgerEntry(TypedDict):
    entry_id: str
    user_id: str
    amount: int
    kind: str
    idempotency_key: str
    reference_id: str | None
    credit_balance: int  # the user's balance after this entry
    created_at: str | None
    replayed: bool


class CreditsMoved(TypedDict):
    from_balance: int
    to_balance: int
    replayed: bool


class CreditHold(TypedDict):
    hold_id: str
    user_id: str
    amount: int
    reference_id: str
    status: str
    created_at: str | None
    released_at: str | None


class CreditHoldPlaced(CreditHold):
    created: bool  # False: a hold with this reference was there already


class CreditHoldRelease(TypedDict):
    released: bool
    hold: CreditHold | None


class OtpStatus(TypedDict):
    verified: bool
    attempts_left: int
    expires_at: str | None
    expired: bool
    exhausted: bool


class OtpChallenge(TypedDict):
    challenge_id: str
    expires_at: str


class Topup(TypedDict):
    topup_id: str
    user_id: str
    amount: int
    provider: str
    status: str
    checkout_url: str | None
    created_at: str | None
    paid_at: str | None


# ----- orders -----
class Order(TypedDict):
    order_id: str
    user_id: str
    seat_id: str
    event_id: str
    status: str
    credits_charged: int
    hold_id: str | None
    reason: str | None
    created_at: str | None
    confirmed_at: str | None
    updated_at: str | None


class Transfer(TypedDict):
    transfer_id: str
    seat_id: str
    seller_user_id: str
    buyer_user_id: str
    credits_amount: int
    initiated_by: str
    status: str
    seller_confirmed: bool
    buyer_confirmed: bool
    dispute_reason: str | None
    reason: str | None
    created_at: str | None
    completed_at: str | None
    updated_at: str | None


# ----- events -----
class Venue(TypedDict):
    venue_id: str | None
    name: str
    address: str


class Event(TypedDict):
    event_id: str
    name: str
    venue: Venue
    hall_id: str
    event_date: str
    doors_open: str | None
    doors_close: str | None
    pricing: dict[str, int]
    category_rows: dict[str, Any]
    total_seats: int
    created_at: str | None
    status: str
    cancel_reason: str | None


class Gate(TypedDict):
    gate_id: str
    hall_id: str
    name: str
    enabled: bool
    created_at: str | None
    updated_at: str | None
    last_seen_at: str | None


class NewGate(Gate):
    device_token: str  # shown once, at creation
