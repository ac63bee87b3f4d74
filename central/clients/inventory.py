"""gRPC client for inventory: one channel, a deadline and the correlation id on every call."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from central.errors import ApiError
from central.logs import correlation_id
from proto import inventory_pb2 as pb
from proto import inventory_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # gRPC's default reconnect backoff grows to 120 s: after a restart of inventory every call
    # would fail fast until the next attempt. One second at most brings us back within a second
    # of inventory (the chaos run's "SIGKILL inventory" measured it).
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class InventoryError(Exception):
    """A gRPC failure from inventory that the caller maps to its own public error."""

    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def reason(self) -> str:
        """The machine-readable prefix of the detail (`HOLD_EXPIRED: …` → `HOLD_EXPIRED`)."""
        head = self.detail.split(":", 1)[0].strip()
        return head if head.isupper() else ""


class InventoryClient:
    def __init__(self, address: str, internal_token: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._token = internal_token
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.InventoryStub | None = None

    async def start(self) -> None:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
            self._stub = pb_grpc.InventoryStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def call(self, method: str, request: Any, *, timeout: float | None = None) -> Any:
        """Call an RPC by name. Unreachable → ApiError SERVICE_UNAVAILABLE; other failures →
        InventoryError for the caller to map."""
        if self._stub is None:
            await self.start()
        rpc = getattr(self._stub, method)
        metadata = (("x-internal-token", self._token), ("correlation-id", correlation_id.get()))
        try:
            return await rpc(request, timeout=timeout or self.timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in UNREACHABLE:
                log.warning("inventory %s: %s", method, exc.code().name)
                raise ApiError("SERVICE_UNAVAILABLE", "inventory is unavailable") from None
            raise InventoryError(exc.code(), exc.details() or "") from None

    async def seat(self, seat_id: str) -> pb.Seat:
        """Read one seat; SEAT_NOT_FOUND when there is none (as the public API says it)."""
        try:
            return await self.call("VerifyTicket", pb.VerifyTicketRequest(seat_id=seat_id))
        except InventoryError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                raise ApiError("SEAT_NOT_FOUND", "no such seat", {"seat_id": seat_id}) from None
            raise ApiError("SERVICE_UNAVAILABLE", f"inventory: {exc.code.name}") from None


def owned_and_sold(seat: pb.Seat, user_id: str, use: str) -> None:
    """Refuse a use (`a QR code`, `a transfer`) of a seat the caller does not own or that is not
    SOLD (held, or already checked in)."""
    if seat.owner_user_id != user_id:
        raise ApiError("NOT_SEAT_OWNER", "this ticket belongs to someone else")
    if seat.status != "SOLD":
        raise ApiError(
            "SEAT_UNAVAILABLE",
            f"no {use} for a ticket that is {seat.status}",
            {"status": seat.status},
        )


__all__ = ["InventoryClient", "InventoryError", "owned_and_sold", "pb"]
