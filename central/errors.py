"""One exception type for every failure an API can answer, mapped to its HTTP status in one place."""

from __future__ import annotations

from typing import Any

# error code -> HTTP status (api-contract.md plus the codes we added; keep both in step).
STATUS_BY_CODE: dict[str, int] = {
    "UNAUTHORIZED": 401,
    "TOKEN_EXPIRED": 401,
    "FORBIDDEN": 403,
    "VALIDATION_ERROR": 400,
    "INVALID_UUID": 400,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "RATE_LIMITED": 429,
    "REQUEST_TIMEOUT": 408,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
    "IDEMPOTENCY_CONFLICT": 409,
    # accounts
    "EMAIL_ALREADY_EXISTS": 409,
    "UNVERIFIED_ACCOUNT": 403,
    "USER_NOT_FOUND": 404,
    "OTP_INVALID": 401,
    "OTP_EXPIRED": 410,
    "OTP_MAX_RETRIES": 429,
    "OTP_NOT_FOUND": 404,
    "ALREADY_VERIFIED": 409,
    "INSUFFICIENT_CREDITS": 402,
    # events and seats
    "EVENT_NOT_FOUND": 404,
    "EVENT_ENDED": 410,
    "GATE_NOT_FOUND": 404,
    "GATE_REVOKED": 401,
    "SEAT_NOT_FOUND": 404,
    "SEAT_UNAVAILABLE": 409,
    "SEAT_ALREADY_SOLD": 409,
    "SEAT_NOT_HELD": 409,
    "SEAT_EXISTS": 409,
    "HOLD_EXPIRED": 410,
    "HOLD_LIMIT_REACHED": 409,
    "NOT_SEAT_OWNER": 403,
    # orders and transfers
    "ORDER_NOT_FOUND": 404,
    "ORDER_ALREADY_CONFIRMED": 409,
    "ORDER_INVALID_STATE": 409,
    "OTP_REQUIRED": 428,
    "TRANSFER_NOT_FOUND": 404,
    "TRANSFER_INVALID_STATE": 409,
    "TRANSFER_IN_PROGRESS": 409,
    "SELF_TRANSFER": 400,
    "TRANSFER_EXPIRED": 410,
    # money in and out
    "TOPUP_NOT_FOUND": 404,
    "TOPUP_INVALID_STATE": 409,
    "PAYMENTS_UNAVAILABLE": 404,
    "WEBHOOK_INVALID": 400,
    "EVENT_CANCELLED": 410,
    "EVENT_INVALID_STATE": 409,
    "SEAT_DISPUTED": 409,
    "SAGA_IN_PROGRESS": 409,
}


class ApiError(Exception):
    """A failure with a public error code; the HTTP status follows from the code."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"success": False, "error_code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_body(cls, status: int, body: Any) -> ApiError:
        """Rebuild the error a service answered, so it crosses the orchestrator unchanged."""
        if isinstance(body, dict) and body.get("error_code") in STATUS_BY_CODE:
            return cls(body["error_code"], str(body.get("message", "")), body.get("details"))
        return cls("SERVICE_UNAVAILABLE", f"service answered HTTP {status}")
