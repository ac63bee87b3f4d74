"""Typed gRPC client for inventory: one method per RPC, one channel, a deadline and the correlation
id on every call. Each RPC's refusals are mapped here, once, from the gRPC status, the detail's
machine code (`HOLD_EXPIRED: …`) and the seat inventory attaches in the trailer (`seat-bin`), so a
caller that lost a race gets the seat as it stands without reading it again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import grpc

from central.errors import ApiError
from central.inventory.errors import detail_code, seat_from_trailers
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
# the reserve refusals the public API names as they are
RESERVE_ERRORS = {"SEAT_NOT_FOUND", "SEAT_ALREADY_SOLD", "SEAT_UNAVAILABLE", "HOLD_LIMIT_REACHED"}
# an UpdateOwner refused because the seat is no longer the expected owner's SOLD seat
SEAT_MOVED_ON = {"NOT_SEAT_OWNER", "SEAT_NOT_SOLD", "SEAT_CHECKED_IN"}

Resp = TypeVar("Resp")


class InventoryError(Exception):
    """A refusal no caller has a public answer for (a bug on one side, not a user's mistake)."""

    def __init__(self, code: grpc.StatusCode, detail: str, seat: pb.Seat | None = None) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail
        self.seat = seat

    @property
    def reason(self) -> str:
        """The machine-readable prefix of the detail (`HOLD_EXPIRED: …` → `HOLD_EXPIRED`)."""
        return detail_code(self.detail)

    @property
    def message(self) -> str:
        return self.detail.split(":", 1)[-1].strip() if self.reason else self.detail

    def unavailable(self, what: str = "inventory") -> ApiError:
        return ApiError("SERVICE_UNAVAILABLE", f"{what}: {self.code.name}")


CheckInOutcome = Literal[
    "DUPLICATE", "DEVICE_REPLACED", "OWNER_CHANGED", "NOT_FOUND", "NOT_SOLD", "OTHER_EVENT"
]


@dataclass(frozen=True)
class CheckInRefused:
    """A MarkCheckedIn that did not admit. `seat` is the seat as it stands (for DUPLICATE: the
    winning scan's check-in), None when there is no such seat."""

    outcome: CheckInOutcome
    seat: pb.Seat | None


@dataclass(frozen=True)
class SeatMovedOn:
    """A compare-and-set refused because the seat is no longer as expected; `seat` as it stands."""

    seat: pb.Seat


@dataclass(frozen=True)
class RowRefused:
    """Inventory refused an entry-log row itself (a bad field): retrying cannot succeed."""

    why: str


class InventoryClient:
    def __init__(self, address: str, internal_token: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._token = internal_token
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.InventoryStub | None = None

    async def start(self) -> None:
        self._connect()

    def _connect(self) -> pb_grpc.InventoryStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
            self._stub = pb_grpc.InventoryStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def _rpc(
        self,
        rpc: Callable[..., Awaitable[Resp]],
        request: Any,
        timeout: float | None = None,
    ) -> Resp:
        """Unreachable → ApiError SERVICE_UNAVAILABLE; a refusal → InventoryError, carrying the
        trailer's seat, for the typed method to map."""
        metadata = (("x-internal-token", self._token), ("correlation-id", correlation_id.get()))
        try:
            return await rpc(request, timeout=timeout or self.timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in UNREACHABLE:
                log.warning("inventory %s: %s", type(request).__name__, exc.code().name)
                raise ApiError("SERVICE_UNAVAILABLE", "inventory is unavailable") from None
            seat = seat_from_trailers(exc.trailing_metadata())
            raise InventoryError(exc.code(), exc.details() or "", seat) from None

    # ----- holds and sales -----
    async def reserve_seat(
        self, seat_id: str, user_id: str, hold_id: str, ttl_seconds: int, max_active_holds: int
    ) -> pb.Seat:
        request = pb.ReserveSeatRequest(
            seat_id=seat_id,
            user_id=user_id,
            hold_id=hold_id,
            ttl_seconds=ttl_seconds,
            max_active_holds=max_active_holds,
        )
        try:
            return await self._rpc(self._connect().ReserveSeat, request)
        except InventoryError as exc:
            if exc.reason in RESERVE_ERRORS:
                raise ApiError(exc.reason, exc.message) from None
            if exc.code == grpc.StatusCode.NOT_FOUND:
                raise ApiError("SEAT_NOT_FOUND", "no such seat") from None
            raise ApiError("SEAT_UNAVAILABLE", "the seat cannot be reserved now") from None

    async def confirm_seat(self, seat_id: str, user_id: str, hold_id: str) -> pb.Seat:
        request = pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user_id, hold_id=hold_id)
        try:
            return await self._rpc(self._connect().ConfirmSeat, request)
        except InventoryError as exc:
            if exc.reason == "HOLD_EXPIRED":
                raise ApiError("HOLD_EXPIRED", "the seat hold expired before payment") from None
            raise ApiError("SEAT_NOT_HELD", "the seat is no longer held for this order") from None

    async def release_seat(self, seat_id: str, hold_id: str) -> bool:
        """True when this call released the hold (a release of an old hold is a no-op)."""
        request = pb.ReleaseSeatRequest(seat_id=seat_id, hold_id=hold_id)
        reply = await self._rpc(self._connect().ReleaseSeat, request)
        return bool(reply.released)

    # ----- ownership -----
    async def update_owner(self, seat_id: str, expected: str, new: str) -> pb.Seat | SeatMovedOn:
        request = pb.UpdateOwnerRequest(
            seat_id=seat_id, expected_owner_user_id=expected, new_owner_user_id=new
        )
        try:
            return await self._rpc(self._connect().UpdateOwner, request)
        except InventoryError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                raise ApiError("SEAT_NOT_FOUND", "no such seat", {"seat_id": seat_id}) from None
            if exc.reason in SEAT_MOVED_ON and exc.seat is not None:
                return SeatMovedOn(exc.seat)
            raise exc.unavailable() from None

    async def refund_seat(self, seat_id: str, owner_epoch: int) -> bool | SeatMovedOn:
        """True when this call refunded, False when an earlier try did; SeatMovedOn when the
        owner epoch moved on (or the seat is no longer sold)."""
        request = pb.RefundSeatRequest(seat_id=seat_id, owner_epoch=owner_epoch)
        try:
            reply = await self._rpc(self._connect().RefundSeat, request)
        except InventoryError as exc:
            if exc.code == grpc.StatusCode.ABORTED and exc.seat is not None:
                return SeatMovedOn(exc.seat)
            raise exc.unavailable() from None
        return bool(reply.refunded)

    async def bind_device(self, seat_id: str, owner_user_id: str, owner_epoch: int) -> pb.Seat:
        request = pb.BindDeviceRequest(
            seat_id=seat_id, owner_user_id=owner_user_id, owner_epoch=owner_epoch
        )
        try:
            return await self._rpc(self._connect().BindDevice, request)
        except InventoryError as exc:
            if exc.code in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION):
                # transferred, refunded or checked in between the caller's read and the bind
                raise ApiError(
                    "SEAT_UNAVAILABLE", "the ticket changed meanwhile; open it again"
                ) from None
            raise exc.unavailable() from None

    # ----- admission -----
    async def mark_checked_in(
        self,
        seat_id: str,
        owner_epoch: int,
        gate_id: str,
        scan_id: str,
        checked_in_at_ms: int,
        device_serial: int,
        *,
        entry_log: pb.EntryLogEntry | None = None,
        event_id: str = "",
        timeout: float | None = None,
    ) -> pb.Seat | CheckInRefused:
        """`entry_log`: the admission's entry-log row, written in the admitting transaction.
        `event_id`: admit only a seat of this event (OTHER_EVENT otherwise)."""
        request = pb.MarkCheckedInRequest(
            seat_id=seat_id,
            owner_epoch=owner_epoch,
            gate_id=gate_id,
            scan_id=scan_id,
            checked_in_at_ms=checked_in_at_ms,
            device_serial=device_serial,
            event_id=event_id,
            entry_log=entry_log,
        )
        try:
            return await self._rpc(self._connect().MarkCheckedIn, request, timeout)
        except InventoryError as exc:
            outcome = _check_in_outcome(exc)
            if outcome is None:
                log.warning("MarkCheckedIn refused: %s", exc)
                raise ApiError("SERVICE_UNAVAILABLE", "inventory refused the check-in") from None
            return CheckInRefused(outcome, exc.seat)

    async def undo_check_in(
        self, seat_id: str, scan_id: str, result: str, detail: str, *, timeout: float | None = None
    ) -> bool:
        """Undo the check-in this scan made (and only that one), its entry-log row rewritten to
        `result`. False when there was none to undo; SERVICE_UNAVAILABLE when refused otherwise."""
        request = pb.UndoCheckInRequest(
            seat_id=seat_id, scan_id=scan_id, result=result, detail=detail
        )
        try:
            reply = await self._rpc(self._connect().UndoCheckIn, request, timeout)
        except InventoryError as exc:
            if exc.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return False
            log.warning("UndoCheckIn refused: %s", exc)
            raise ApiError("SERVICE_UNAVAILABLE", "inventory could not undo a check-in") from None
        return bool(reply.undone)

    # ----- reads -----
    async def seat(self, seat_id: str, *, timeout: float | None = None) -> pb.Seat:
        """Read one seat; SEAT_NOT_FOUND when there is none (as the public API says it)."""
        found = await self.find_seat(seat_id, timeout=timeout)
        if found is None:
            raise ApiError("SEAT_NOT_FOUND", "no such seat", {"seat_id": seat_id})
        return found

    async def find_seat(self, seat_id: str, *, timeout: float | None = None) -> pb.Seat | None:
        """Read one seat; None when there is none."""
        request = pb.VerifyTicketRequest(seat_id=seat_id)
        try:
            return await self._rpc(self._connect().VerifyTicket, request, timeout)
        except InventoryError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise exc.unavailable() from None

    async def list_seats(
        self,
        *,
        event_id: str = "",
        owner_user_id: str = "",
        statuses: Iterable[str] = (),
        timeout: float | None = None,
    ) -> list[pb.Seat]:
        request = pb.ListSeatsRequest(
            event_id=event_id, owner_user_id=owner_user_id, statuses=list(statuses)
        )
        try:
            reply = await self._rpc(self._connect().ListSeats, request, timeout)
        except InventoryError as exc:
            raise exc.unavailable("seats unavailable") from None
        return list(reply.seats)

    async def seat_counts(
        self, event_ids: Sequence[str], *, timeout: float | None = None
    ) -> dict[str, dict[str, int]]:
        """Seats per status of each event: {event_id: {status: count}}."""
        request = pb.SeatCountsRequest(event_ids=list(event_ids))
        try:
            reply = await self._rpc(self._connect().SeatCounts, request, timeout)
        except InventoryError as exc:
            raise exc.unavailable("seat counts unavailable") from None
        return {c.event_id: dict(c.by_status) for c in reply.events}

    async def manifest(
        self, event_ids: Sequence[str], cursor: int, limit: int
    ) -> pb.ManifestResponse:
        request = pb.ManifestRequest(event_ids=list(event_ids), cursor=cursor, limit=limit)
        try:
            return await self._rpc(self._connect().GetManifest, request)
        except InventoryError as exc:
            raise exc.unavailable("manifest unavailable") from None

    async def list_entry_logs(
        self, *, event_id: str = "", scan_id: str = "", limit: int = 0
    ) -> list[pb.EntryLogEntry]:
        request = pb.ListEntryLogsRequest(event_id=event_id, scan_id=scan_id, limit=limit)
        try:
            reply = await self._rpc(self._connect().ListEntryLogs, request)
        except InventoryError as exc:
            raise exc.unavailable("entry logs unavailable") from None
        return list(reply.entries)

    # ----- writes without a public refusal -----
    async def create_seats(
        self, event_id: str, seats: Sequence[pb.NewSeat], *, timeout: float | None = None
    ) -> list[str]:
        """The new seats' ids, in the order given. All or none: one transaction."""
        request = pb.CreateSeatsRequest(event_id=event_id, seats=list(seats))
        reply = await self._rpc(self._connect().CreateSeats, request, timeout)
        return list(reply.seat_ids)

    async def write_entry_log(
        self, entry: pb.EntryLogEntry, *, timeout: float | None = None
    ) -> bool | RowRefused:
        """True when this call wrote the row, False when it was there already; RowRefused when
        inventory refuses the row itself."""
        try:
            reply = await self._rpc(self._connect().WriteEntryLog, entry, timeout)
        except InventoryError as exc:
            if exc.code == grpc.StatusCode.INVALID_ARGUMENT:
                return RowRefused(exc.detail)
            raise
        return bool(reply.written)

    async def write_entry_logs(
        self, entries: Sequence[pb.EntryLogEntry], *, timeout: float | None = None
    ) -> list[bool | RowRefused]:
        """Many rows in one call, answered in order as write_entry_log answers one."""
        if not entries:
            return []
        batch = pb.EntryLogBatch(entries=entries)
        reply = await self._rpc(self._connect().WriteEntryLogs, batch, timeout)
        return [RowRefused(o.refused) if o.refused else bool(o.written) for o in reply.outcomes]


def _check_in_outcome(exc: InventoryError) -> CheckInOutcome | None:
    if exc.code == grpc.StatusCode.ALREADY_EXISTS:
        return "DUPLICATE"
    if exc.code == grpc.StatusCode.ABORTED:
        return "DEVICE_REPLACED" if exc.reason == "DEVICE_REPLACED" else "OWNER_CHANGED"
    if exc.code == grpc.StatusCode.NOT_FOUND:
        return "NOT_FOUND"
    if exc.code == grpc.StatusCode.FAILED_PRECONDITION:
        if exc.reason == "OTHER_EVENT":
            return "OTHER_EVENT"
        return "NOT_SOLD"  # e.g. refunded and released since the caller's read
    return None


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


__all__ = [
    "CheckInRefused",
    "InventoryClient",
    "InventoryError",
    "RowRefused",
    "SeatMovedOn",
    "owned_and_sold",
    "pb",
]
