"""The messages between a gate and central (api-contract "Verification" and "Gates"), each defined
once: central parses what a gate sends and builds what it answers with these models, and the gate
agent builds its requests and reads central's answers with the very same classes. One spelling per
field and value (`decision` is ADMITTED or REJECTED; an upload's answers are `items`).

What a gate sends is read strictly: an unknown field, a missing one or a wrong type is a 400
VALIDATION_ERROR naming the field (central/web.py parse_body). What central answers is read strictly
for the fields the gate knows (missing, mistyped or an unknown value is GateMessageError: the gate
treats the answer as no answer and decides offline), while a field it does not know is ignored: a
fleet of gates is upgraded one by one, and a newer central adding a field to an answer must not
send every older gate offline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VERIFY_PATH = "/api/gate/verify"
MANIFEST_PATH = "/api/gate/manifest"
CHECKINS_PATH = "/api/gate/checkins"

# The error code of a 401 for a gate the operator revoked (not "offline": it must stop admitting).
GATE_REVOKED = "GATE_REVOKED"

ADMITTED = "ADMITTED"
REJECTED = "REJECTED"
Decision = Literal["ADMITTED", "REJECTED"]
# What central did with one uploaded item.
UploadOutcome = Literal["APPLIED", "CONFLICT", "ALREADY_RECEIVED", "REJECTED"]
MAX_UPLOAD_ITEMS = 500

QrPayload = Annotated[str, Field(min_length=1, max_length=1000)]
# A gate's own scan id: UUID text or any short opaque id it generates.
ScanId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
VerdictName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Z_]+$")]
# ISO-8601 text (a zone is required; naive is taken as UTC) or unix seconds.
ScanTime = datetime | Annotated[float, Field(ge=0, le=4_294_967_295)]


class GateMessageError(ValueError):
    """A message that is not what the other side may send: names the message and the field."""


def describe(exc: ValidationError) -> str:
    """`field.path: what is wrong` for each error (at most five), `; `-separated."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()[:5]
    )


class GateMessage(BaseModel):
    """One gate<->central message. `from_json` reads the wire form (JSON text, or a JSON object
    already decoded), `make` builds one from Python values (a datetime for a time), both raising
    GateMessageError; `to_json` gives the wire form (fields never set are left out, as the
    contract's optional fields are)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Self:
        text = data if isinstance(data, str | bytes) else json.dumps(data)
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise GateMessageError(f"{cls.__name__}: {describe(exc)}") from None

    @classmethod
    def make(cls, **values: Any) -> Self:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise GateMessageError(f"{cls.__name__}: {describe(exc)}") from None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


# ----- gate -> central -----


class GateVerifyBody(GateMessage):
    """POST /api/gate/verify: one scan, judged by central now."""

    qr_payload: QrPayload
    scan_id: ScanId
    scanned_at: ScanTime | None = None


class CheckinItem(GateMessage):
    """One scan the gate decided alone, and what it did at the door."""

    scan_id: ScanId
    qr_payload: QrPayload
    scanned_at: ScanTime
    decision: Decision
    result: VerdictName


class CheckinsBody(GateMessage):
    """POST /api/gate/checkins: the gate's offline decisions, oldest first."""

    items: Annotated[list[CheckinItem], Field(min_length=1, max_length=MAX_UPLOAD_ITEMS)]


class ManifestQuery(GateMessage):
    """GET /api/gate/manifest?cursor=C[&limit=N] (query text: numbers are parsed from it)."""

    model_config = ConfigDict(strict=False, extra="forbid")
    cursor: Annotated[int, Field(ge=0, le=2**62)] = 0
    limit: Annotated[int, Field(ge=1, le=5000)] = 1000


# ----- central -> gate -----


class GateAnswer(GateMessage):
    """An answer central sends: fields the reader does not know are ignored (tolerant reader)."""

    model_config = ConfigDict(strict=True, extra="ignore")


class ScanSeat(GateAnswer):
    seat_id: str
    row: str | None = None
    number: int | None = None


class EventView(GateAnswer):
    event_id: str
    name: str
    hall_id: str


class ConflictSide(GateAnswer):
    gate_id: str | None
    at: str | None


class Conflict(GateAnswer):
    """Two admissions of one ticket: the one that counts, and this gate's offline one."""

    first: ConflictSide
    second: ConflictSide


class VerdictFacts(GateAnswer):
    """What a verdict may say beyond its name (api-contract "Verification"): each only when it
    applies, e.g. `checked_in_at` and `checked_in_gate_id` for DUPLICATE, the halls for
    WRONG_HALL, the event's times for WRONG_DATE, `reason` for INVALID."""

    message: str | None = None
    seat: ScanSeat | None = None
    event: EventView | None = None
    checked_in_at: str | None = None
    checked_in_gate_id: str | None = None
    issued_at: str | None = None
    reason: str | None = None
    expected_hall: str | None = None
    presented_hall: str | None = None
    event_date: str | None = None
    doors_open: str | None = None
    doors_close: str | None = None
    conflict: Conflict | None = None


class VerifyAnswer(VerdictFacts):
    """data of POST /api/gate/verify. `mode` is offline when the scan id was already uploaded
    (central then repeats what it answered to the upload: its `outcome` and `gate_result`)."""

    result: VerdictName
    message: str
    scan_id: str
    mode: Literal["online", "offline"]
    outcome: UploadOutcome | None = None
    gate_result: str | None = None
    server_time: str | None = None


class CheckinAnswer(VerdictFacts):
    """One uploaded item's answer. `result` is central's verdict (for REJECTED and
    ALREADY_RECEIVED it may be the gate's own), `gate_result` what the gate had said."""

    scan_id: str
    outcome: UploadOutcome
    result: VerdictName
    gate_result: str | None = None


class CheckinsAnswer(GateAnswer):
    """data of POST /api/gate/checkins: one answer per item, in the items' order."""

    items: list[CheckinAnswer]
    server_time: str | None = None


class ManifestSeat(GateAnswer):
    seat_id: str
    event_id: str
    status: str
    owner_epoch: int
    refunded_epoch: int
    device_serial: int
    hall_id: str
    row: str
    number: int
    checked_in_at: str | None


class ManifestEvent(GateAnswer):
    event_id: str
    name: str
    hall_id: str
    event_date: str
    doors_open: str | None
    doors_close: str | None
    status: str


class PublicKey(GateAnswer):
    kid: int
    public_key: str


class ManifestAnswer(GateAnswer):
    """data of GET /api/gate/manifest: the seats of the gate's hall changed after the cursor (a
    page; `more` when another follows), its events, central's public keys, and the token rules."""

    gate_id: str
    gate_name: str | None
    hall_id: str
    cursor: int
    more: bool
    seats: list[ManifestSeat]
    events: list[ManifestEvent]
    keys: list[PublicKey]
    ttl_seconds: int
    skew_seconds: int
    server_time: str
