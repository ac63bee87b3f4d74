"""The failures the inventory answers, each a kind (-> gRPC status) and a machine-readable code.

The gRPC status details are `"<CODE>: <message>"` so a caller can branch on the code without parsing
prose (`detail_code`). A MarkCheckedIn that lost to another scan also carries the winning seat in
the trailing metadata key `seat-bin` (`seat_from_trailers`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from central.inventory.store import SeatRecord

SEAT_TRAILER_KEY = "seat-bin"


class Kind(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    ABORTED = "ABORTED"


class InventoryError(Exception):
    """A refused request: nothing was changed."""

    def __init__(self, kind: Kind, code: str, message: str, seat: SeatRecord | None = None):
        super().__init__(f"{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.seat = seat

    @property
    def detail(self) -> str:
        return f"{self.code}: {self.message}"


def invalid(field: str, message: str) -> InventoryError:
    return InventoryError(Kind.INVALID_ARGUMENT, "VALIDATION_ERROR", f"{field}: {message}")


def detail_code(details: str | None) -> str:
    """The machine-readable code at the front of a status detail ("" when there is none)."""
    if not details or ":" not in details:
        return ""
    head = details.split(":", 1)[0]
    return head if head.replace("_", "").isalnum() and head.isupper() else ""


def seat_from_trailers(trailers: Iterable[Any] | None) -> Any:
    """The `Seat` message a refused call attached to its trailing metadata, or None."""
    from proto import inventory_pb2

    for item in trailers or ():
        key, value = item[0], item[1]
        if key == SEAT_TRAILER_KEY and isinstance(value, bytes):
            return inventory_pb2.Seat.FromString(value)
    return None
