"""The public answers, one model per shape: each route returns an instance (answers.py), and the
OpenAPI document describes these same classes. Times are ISO-8601 text as the services keep them;
ids are UUID text. A field with a default is one the answer carries only in some cases."""

from __future__ import annotations

from pydantic import RootModel

from central.orchestrator.answers import AnswerModel
from proto.gate_api import VerdictFacts

# ----- accounts -----


class Registered(AnswerModel):
    user_id: str
    email: str
    status: str
    message: str


class UserRecord(AnswerModel):
    user_id: str
    email: str
    phone: str | None
    role: str
    is_flagged: bool
    is_verified: bool
    credit_balance: int
    created_at: str | None


class UserSummary(AnswerModel):
    user_id: str
    email: str
    credit_balance: int
    role: str


class Tokens(AnswerModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class Verified(Tokens):
    user: UserRecord


class LoggedIn(Tokens):
    user: UserSummary


class Refreshed(AnswerModel):
    access_token: str
    expires_in: int


class LoggedOut(AnswerModel):
    logged_out: bool


class OtpResent(AnswerModel):
    challenge_id: str
    expires_at: str | None
    resends_left: int


class Balance(AnswerModel):
    user_id: str
    credit_balance: int


class Account(AnswerModel):
    """A user as /api/me and the console's user search show them."""

    user_id: str
    email: str
    phone: str | None
    role: str
    flagged: bool
    verified: bool
    credit_balance: int
    created_at: str | None


class UpdatedUser(UserRecord):
    flagged: bool
    verified: bool


class AccountList(RootModel[list[Account]]):
    pass


# ----- events -----


class VenueRef(AnswerModel):
    venue_id: str | None
    name: str | None
    address: str | None = None  # on an event's own page


class PublicEvent(AnswerModel):
    event_id: str
    name: str
    venue: VenueRef
    hall_id: str
    event_date: str
    doors_open: str | None
    doors_close: str | None
    total_seats: int | None
    available_seats: int
    pricing: dict[str, int]
    status: str
    cancel_reason: str | None


class SeatView(AnswerModel):
    seat_id: str
    row: str
    number: int
    status: str
    category: str
    price: int | None


class EventDetail(PublicEvent):
    seats: list[SeatView]


class PublicEventList(RootModel[list[PublicEvent]]):
    pass


class EventSummary(AnswerModel):
    """An event beside an order, a transfer or a ticket; only its id when the record is gone."""

    event_id: str | None
    name: str | None = None
    hall_id: str | None = None
    event_date: str | None = None
    doors_open: str | None = None
    doors_close: str | None = None
    venue: VenueRef | None = None


# ----- admin -----


class EventCreated(AnswerModel):
    event_id: str
    name: str
    hall_id: str
    event_date: str
    seats_created: int
    seat_ids: list[str]


class GateAdded(AnswerModel):
    gate_id: str
    device_token: str
    hall_id: str
    name: str


class GateItem(AnswerModel):
    gate_id: str
    name: str
    hall_id: str
    enabled: bool
    last_seen_at: str | None
    created_at: str | None


class GateRevoked(GateItem):
    revoked: bool


class GateList(RootModel[list[GateItem]]):
    pass


class AdminEvent(AnswerModel):
    event_id: str
    name: str
    venue: VenueRef
    hall_id: str
    event_date: str
    doors_open: str | None
    doors_close: str | None
    status: str
    total: int
    sold: int
    held: int
    available: int
    checked_in: int
    revenue: int


class AdminEventList(RootModel[list[AdminEvent]]):
    pass


class EventCancelled(AnswerModel):
    event_id: str
    status: str
    orders_refunded: int
    reason: str | None


class OrderRefunded(AnswerModel):
    order_id: str
    status: str
    seat_id: str
    credits_refunded: int
    user_id: str


class DisputeClosed(AnswerModel):
    transfer_id: str
    status: str
    dispute: str
    credits_released: int


# ----- the event dashboard -----


class DashboardEvent(AnswerModel):
    event_id: str
    name: str
    hall_id: str
    event_date: str
    doors_open: str | None
    doors_close: str | None


class SeatCounts(AnswerModel):
    total: int
    by_status: dict[str, int]


class Sales(AnswerModel):
    sold: int
    held: int
    available: int
    orders_confirmed: int


class GateCount(AnswerModel):
    gate_id: str | None
    name: str | None
    count: int


class MinuteCount(AnswerModel):
    minute: str
    count: int


class Admissions(AnswerModel):
    total: int
    by_gate: list[GateCount]
    per_minute: list[MinuteCount]
    recent_minutes: list[MinuteCount]
    window_minutes: int


class ScanCounts(AnswerModel):
    window: int
    by_result: dict[str, int]
    by_mode: dict[str, int]


class EntryView(AnswerModel):
    scan_id: str | None
    seat_id: str | None
    gate_id: str | None
    gate_name: str | None
    staff_user_id: str | None
    result: str
    mode: str
    hall_presented: str | None
    hall_expected: str | None
    scanned_at: str
    latency_ms: float
    detail: str


class Conflicts(AnswerModel):
    count: int
    items: list[EntryView]


class Dashboard(AnswerModel):
    event: DashboardEvent
    seats: SeatCounts
    checked_in: int
    revenue: int
    sales: Sales
    orders_by_status: dict[str, int]
    admissions: Admissions
    scans: ScanCounts
    conflicts: Conflicts
    recent_entries: list[EntryView]
    server_time: str


# ----- purchase, orders, money -----


class Reserved(AnswerModel):
    order_id: str
    seat_id: str
    event_id: str
    status: str
    held_until: str
    ttl_seconds: int
    price: int


class Paid(AnswerModel):
    order_id: str
    seat_id: str
    status: str
    credits_charged: int
    remaining_balance: int | None


class OtpVerified(AnswerModel):
    verified: bool


class OrderItem(AnswerModel):
    order_id: str
    seat_id: str
    event: EventSummary
    row: str | None
    number: int | None
    status: str
    credits_charged: int
    created_at: str
    confirmed_at: str | None


class OrderList(RootModel[list[OrderItem]]):
    pass


class LedgerEntry(AnswerModel):
    entry_id: str
    amount: int
    kind: str
    reference_id: str | None
    balance_after: int
    created_at: str


class LedgerList(RootModel[list[LedgerEntry]]):
    pass


class TopupView(AnswerModel):
    topup_id: str
    amount: int
    provider: str
    status: str
    checkout_url: str | None
    created_at: str | None
    paid_at: str | None


class WebhookReceived(AnswerModel):
    received: bool
    handled: bool


class DemoPayment(AnswerModel):
    topup_id: str
    amount: int
    status: str
    credit_balance: int | None = None  # once paid


# ----- tickets -----


class CheckedInGate(AnswerModel):
    gate_id: str
    name: str | None


class Ticket(AnswerModel):
    seat_id: str
    event: EventSummary
    row: str
    number: int
    category: str
    status: str
    device_serial: int
    owner_epoch: int
    checked_in_at: str | None
    checked_in_gate: CheckedInGate | None


class TicketList(RootModel[list[Ticket]]):
    pass


class TicketQr(AnswerModel):
    seat_id: str
    qr_payload: str
    short_code: str
    generated_at: str
    expires_at: str
    ttl_seconds: int
    server_time: str


class DeviceBound(AnswerModel):
    seat_id: str
    cert: str
    device_serial: int
    not_after: int
    not_after_iso: str
    ttl_seconds: int
    server_time: str


# ----- transfers -----


class TransferInitiated(AnswerModel):
    transfer_id: str
    status: str
    seat_id: str
    seller_user_id: str
    buyer_user_id: str
    credits_amount: int
    expires_in: int


class TransferConfirmed(AnswerModel):
    """Still waiting for the other party (the confirmations so far), or COMPLETED."""

    transfer_id: str
    status: str
    seat_id: str
    new_owner_user_id: str | None
    seller_confirmed: bool = False
    buyer_confirmed: bool = False
    credits_amount: int | None = None


class TransferRecord(AnswerModel):
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


class TransferDisputed(TransferRecord):
    held_credits: int


class TransferReversed(AnswerModel):
    transfer_id: str
    status: str
    restored_owner_user_id: str
    credits_returned: int


class TransferItem(AnswerModel):
    transfer_id: str
    seat_id: str
    event: EventSummary
    row: str | None
    number: int | None
    seller_email: str | None
    buyer_email: str | None
    credits_amount: int
    status: str
    role: str | None
    i_confirmed: bool | None
    seller_confirmed: bool
    buyer_confirmed: bool
    dispute_reason: str | None
    created_at: str
    completed_at: str | None


class TransferList(RootModel[list[TransferItem]]):
    pass


# ----- scanning -----
# A gate's answers (verify, manifest, checkins) are proto/gate_api.py's models, shared with the
# gate agent; a staff phone's verdict says the same facts.


class StaffVerdict(VerdictFacts):
    result: str
    server_time: str
