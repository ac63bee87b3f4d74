"""Request bodies and queries of the users service. Strict types (no "5" for 5, no 1 for true),
bounded lengths, ids as UUIDs; a violation is a 400 naming the field (central.web.parse_body)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# No control characters (NUL included): docs/internal-api.md promises a 400 for them.
_ADDR = r"[^@\s\x00-\x1f\x7f]"
EMAIL_PATTERN = rf"^{_ADDR}{{1,64}}@{_ADDR}+\.{_ADDR}+$"
MAX_CREDITS = 10**12  # far above any real balance, far below BIGINT overflow

Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN)
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=20, pattern=r"^\+?[1-9][0-9]{6,18}$")
]
Role = Literal["customer", "staff", "admin"]
Kind = Literal["GRANT", "PURCHASE", "REFUND", "TRANSFER_OUT", "TRANSFER_IN", "REVERSAL"]
Purpose = Literal["registration", "purchase", "transfer"]
Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
OtpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
# ":debit"/":credit" are appended for transfers, and the column holds 200.
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=190)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Query(BaseModel):
    # Query strings are text: let pydantic parse them, but nothing unknown.
    model_config = ConfigDict(extra="forbid")


class CreateUser(Body):
    email: Email
    phone: Phone | None = None
    password: Password
    role: Role = "customer"
    is_flagged: bool = False
    verified: bool = False
    credits: int = Field(default=0, ge=0, le=MAX_CREDITS)


class PatchUser(Body):
    is_flagged: bool | None = None
    role: Role | None = None


class EmailQuery(Query):
    email: Email


class UserSearchQuery(Query):
    # a fragment of an address, not a whole one: "@example.com", "alice"
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] = ""
    limit: int = Field(default=50, ge=1, le=200)


class PageQuery(Query):
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=20, ge=1, le=100)


class VerifyRegistration(Body):
    user_id: uuid.UUID
    otp_code: OtpCode


class Login(Body):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RefreshBody(Body):
    refresh_token: Token


class TokenBody(Body):
    token: Token


class RevocationsQuery(Query):
    # the `cursor` of the previous answer: microseconds since the epoch, users' clock
    since: int | None = Field(default=None, ge=0)


class CreditEntry(Body):
    user_id: uuid.UUID
    amount: int = Field(ge=-MAX_CREDITS, le=MAX_CREDITS)
    kind: Kind
    idempotency_key: IdempotencyKey
    reference_id: Reference | None = None

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be 0")
        return value


class Transfer(Body):
    from_user_id: uuid.UUID
    to_user_id: uuid.UUID
    amount: int = Field(gt=0, le=MAX_CREDITS)
    idempotency_key: IdempotencyKey
    reference_id: Reference | None = None
    # A credit hold (by its reference) ended in the same transaction: a disputed sale reversed.
    release_hold: Reference | None = None


class OtpTarget(Body):
    user_id: uuid.UUID
    purpose: Purpose
    reference_id: uuid.UUID


class OtpVerify(OtpTarget):
    code: OtpCode


class OtpStatusQuery(Query):
    user_id: uuid.UUID
    purpose: Purpose
    reference_id: uuid.UUID
