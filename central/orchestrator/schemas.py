"""Public request bodies. Strict: a number is not a string, unknown fields are ignored, every
string has a length limit, so a malformed body is a 400 naming its field before anything runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from proto.gate_api import QrPayload

# No control characters (NUL included) anywhere in an address: docs/internal-api.md promises a 400.
_ADDR = r"[^@\s\x00-\x1f\x7f]"
EMAIL_PATTERN = rf"^{_ADDR}{{1,64}}@{_ADDR}{{1,185}}\.{_ADDR}{{1,63}}$"
HALL_PATTERN = r"^[A-Z0-9][A-Z0-9-]{0,19}$"

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Phone = Annotated[str, Field(min_length=6, max_length=20, pattern=r"^\+?[0-9 -]{6,20}$")]
OtpCode = Annotated[str, Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]
HallId = Annotated[str, Field(pattern=HALL_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Credits = Annotated[int, Field(ge=0, le=1_000_000_000)]


class Strict(BaseModel):
    # unknown fields are refused by name: a misspelt optional field must not pass unnoticed
    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=False)


class RegisterBody(Strict):
    email: Email
    password: Password
    phone: Phone | None = None


class VerifyRegistrationBody(Strict):
    user_id: uuid.UUID
    otp_code: OtpCode


class LoginBody(Strict):
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class OtpResendBody(Strict):
    context: Literal["registration", "purchase", "transfer"]
    reference_id: uuid.UUID


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=100)] = 20


class VenueBody(Strict):
    name: Name
    address: Annotated[str, Field(max_length=500)] = ""


class SeatLayout(Strict):
    rows: (
        Annotated[int, Field(ge=1, le=200)]
        | list[Annotated[str, Field(min_length=1, max_length=4)]]
    )
    seats_per_row: Annotated[int, Field(ge=1, le=500)]
    category_rows: dict[Annotated[str, Field(max_length=20)], list[str]] | None = None


class CreateEventBody(Strict):
    name: Name
    venue: VenueBody
    hall_id: HallId
    event_date: datetime
    doors_open: datetime | None = None
    doors_close: datetime | None = None
    pricing: dict[Annotated[str, Field(min_length=1, max_length=20)], Credits] = Field(min_length=1)
    seats: SeatLayout


class AddGateBody(Strict):
    hall_id: HallId
    name: Name


class GrantCreditsBody(Strict):
    user_id: uuid.UUID
    amount: Annotated[int, Field(ge=1, le=1_000_000_000)]


class UpdateUserBody(Strict):
    # `flagged` is the name /api/me and the user list answer; `is_flagged` stays accepted
    flagged: bool | None = None
    is_flagged: bool | None = None
    role: Literal["customer", "staff", "admin"] | None = None


class ReserveBody(Strict):
    seat_id: uuid.UUID
    event_id: uuid.UUID | None = None  # accepted for compatibility; the seat names its event


class PayBody(Strict):
    order_id: uuid.UUID


class VerifyOtpBody(Strict):
    context: Literal["purchase", "transfer"]
    reference_id: uuid.UUID
    otp_code: OtpCode


# ----- verification and gates -----
# The gate's messages (verify, manifest, checkins) are proto/gate_api.py, shared with the gate.


class StaffVerifyBody(Strict):
    qr_payload: QrPayload
    hall_id: HallId


# ----- transfers -----

DisputeReason = Annotated[str, Field(min_length=1, max_length=500)]


class TransferInitiateBody(Strict):
    seat_id: uuid.UUID
    buyer_email: Email
    credits_amount: Credits


class TransferConfirmBody(Strict):
    transfer_id: uuid.UUID
    otp_code: OtpCode


class TransferDisputeBody(Strict):
    transfer_id: uuid.UUID
    reason: DisputeReason


class TransferReverseBody(Strict):
    transfer_id: uuid.UUID
