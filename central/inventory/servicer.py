"""The Inventory gRPC methods: validate every field, call the store, answer a message.

Refusals are raised as InventoryError; the interceptor turns them into status codes.
"""

from __future__ import annotations

import math
import uuid
from typing import TypeAlias

import grpc.aio

from central.inventory import validate as v
from central.inventory.convert import entry_message, seat_message
from central.inventory.errors import InventoryError, Kind, invalid
from central.inventory.schema import STATUSES
from central.inventory.store import EntryLogRecord, InventoryStore, NewSeatSpec
from proto import inventory_pb2 as pb
from proto import inventory_pb2_grpc

MAX_SEATS_PER_CREATE = 10_000
MAX_EVENT_IDS = 1000
MODES = ("online", "offline", "staff")
MAX_LOG_BATCH = 1000

Ctx: TypeAlias = grpc.aio.ServicerContext


def _event_ids(values: list[str]) -> list[str]:
    if not values:
        raise invalid("event_ids", "at least one event id required")
    if len(values) > MAX_EVENT_IDS:
        raise invalid("event_ids", f"at most {MAX_EVENT_IDS}")
    return sorted({v.uuid_field(e, "event_ids") for e in values})


class InventoryServicer(inventory_pb2_grpc.InventoryServicer):
    def __init__(self, store: InventoryStore):
        self.store = store

    async def ReserveSeat(self, request: pb.ReserveSeatRequest, context: Ctx) -> pb.Seat:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        user_id = v.uuid_field(request.user_id, "user_id")
        hold_id = v.uuid_field(request.hold_id, "hold_id")
        ttl = v.ttl_field(request.ttl_seconds)
        if request.max_active_holds < 0:
            raise invalid("max_active_holds", "must be 0 (no limit) or more")
        seat = await self.store.reserve(seat_id, user_id, hold_id, ttl, request.max_active_holds)
        return seat_message(seat)

    async def ConfirmSeat(self, request: pb.ConfirmSeatRequest, context: Ctx) -> pb.Seat:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        user_id = v.uuid_field(request.user_id, "user_id")
        hold_id = v.uuid_field(request.hold_id, "hold_id")
        return seat_message(await self.store.confirm(seat_id, user_id, hold_id))

    async def ReleaseSeat(
        self, request: pb.ReleaseSeatRequest, context: Ctx
    ) -> pb.ReleaseSeatResponse:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        hold_id = v.uuid_field(request.hold_id, "hold_id")
        released, seat = await self.store.release(seat_id, hold_id)
        return pb.ReleaseSeatResponse(released=released, seat=seat_message(seat))

    async def UpdateOwner(self, request: pb.UpdateOwnerRequest, context: Ctx) -> pb.Seat:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        expected = v.uuid_field(request.expected_owner_user_id, "expected_owner_user_id")
        new = v.uuid_field(request.new_owner_user_id, "new_owner_user_id")
        if new == expected:
            raise invalid("new_owner_user_id", "equals expected_owner_user_id")
        return seat_message(await self.store.update_owner(seat_id, expected, new))

    async def VerifyTicket(self, request: pb.VerifyTicketRequest, context: Ctx) -> pb.Seat:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        return seat_message(await self.store.require_seat(seat_id))

    async def MarkCheckedIn(self, request: pb.MarkCheckedInRequest, context: Ctx) -> pb.Seat:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        gate_id = v.optional_uuid(request.gate_id, "gate_id")
        scan_id = v.uuid_field(request.scan_id, "scan_id")
        if request.owner_epoch < 0:
            raise invalid("owner_epoch", "must not be negative")
        at = v.time_ms_field(request.checked_in_at_ms, "checked_in_at_ms", self.store.clock())
        if request.device_serial < 0:
            raise invalid("device_serial", "must not be negative")
        event_id = v.optional_uuid(request.event_id, "event_id") or ""
        entry = None
        if request.HasField("entry_log"):
            entry = self._entry(request.entry_log)
            if (entry.scan_id, entry.seat_id) != (scan_id, seat_id):
                raise invalid("entry_log", "must name the check-in's own scan_id and seat_id")
        seat = await self.store.mark_checked_in(
            seat_id,
            request.owner_epoch,
            gate_id,
            scan_id,
            at,
            request.device_serial,
            entry,
            event_id=event_id,
        )
        return seat_message(seat)

    async def UndoCheckIn(
        self, request: pb.UndoCheckInRequest, context: Ctx
    ) -> pb.UndoCheckInResponse:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        scan_id = v.uuid_field(request.scan_id, "scan_id")
        result = v.text_field(request.result, "result", 32)
        detail = v.text_field(request.detail, "detail", v.MAX_TEXT, required=False)
        undone, seat = await self.store.undo_check_in(seat_id, scan_id, result, detail)
        return pb.UndoCheckInResponse(undone=undone, seat=seat_message(seat))

    async def RefundSeat(
        self, request: pb.RefundSeatRequest, context: Ctx
    ) -> pb.RefundSeatResponse:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        if request.owner_epoch <= 0:
            raise invalid("owner_epoch", "must be positive (a seat never sold has no ticket)")
        refunded, seat = await self.store.refund(seat_id, request.owner_epoch)
        return pb.RefundSeatResponse(refunded=refunded, seat=seat_message(seat))

    async def BindDevice(self, request: pb.BindDeviceRequest, context: Ctx) -> pb.Seat:
        seat_id = v.uuid_field(request.seat_id, "seat_id")
        owner = v.uuid_field(request.owner_user_id, "owner_user_id")
        if request.owner_epoch < 0:
            raise invalid("owner_epoch", "must not be negative")
        return seat_message(await self.store.bind_device(seat_id, owner, request.owner_epoch))

    async def CreateSeats(
        self, request: pb.CreateSeatsRequest, context: Ctx
    ) -> pb.CreateSeatsResponse:
        event_id = v.uuid_field(request.event_id, "event_id")
        if not request.seats:
            raise invalid("seats", "at least one seat required")
        if len(request.seats) > MAX_SEATS_PER_CREATE:
            raise invalid("seats", f"at most {MAX_SEATS_PER_CREATE} per call")
        specs: list[NewSeatSpec] = []
        seen: set[tuple[str, int]] = set()
        for i, seat in enumerate(request.seats):
            row = v.text_field(seat.row, f"seats.{i}.row", 16)
            if seat.number <= 0:
                raise invalid(f"seats.{i}.number", "must be positive")
            category = v.text_field(seat.category, f"seats.{i}.category", 32)
            if (row, seat.number) in seen:
                raise invalid(f"seats.{i}", f"row {row} number {seat.number} given twice")
            seen.add((row, seat.number))
            specs.append(NewSeatSpec(row, seat.number, category))
        ids = await self.store.create_seats(event_id, specs)
        return pb.CreateSeatsResponse(seats_created=len(ids), seat_ids=ids)

    async def ListSeats(self, request: pb.ListSeatsRequest, context: Ctx) -> pb.ListSeatsResponse:
        event_id = v.optional_uuid(request.event_id, "event_id")
        owner = v.optional_uuid(request.owner_user_id, "owner_user_id")
        if event_id is None and owner is None:
            raise invalid("event_id", "event_id or owner_user_id required")
        statuses = [v.choice_field(s, "statuses", STATUSES) for s in request.statuses]
        found = await self.store.list_seats(
            event_id=event_id, owner_user_id=owner, statuses=statuses
        )
        return pb.ListSeatsResponse(seats=[seat_message(s) for s in found])

    async def SeatCounts(
        self, request: pb.SeatCountsRequest, context: Ctx
    ) -> pb.SeatCountsResponse:
        counts = await self.store.seat_counts(_event_ids(list(request.event_ids)))
        return pb.SeatCountsResponse(
            events=[pb.SeatCounts(event_id=e, by_status=c) for e, c in counts.items()]
        )

    async def GetManifest(self, request: pb.ManifestRequest, context: Ctx) -> pb.ManifestResponse:
        event_ids = _event_ids(list(request.event_ids))
        if request.cursor < 0:
            raise invalid("cursor", "must not be negative")
        limit = v.limit_field(request.limit, default=1000, maximum=5000)
        page = await self.store.manifest(event_ids, request.cursor, limit)
        return pb.ManifestResponse(
            seats=[seat_message(s) for s in page.seats], cursor=page.cursor, more=page.more
        )

    async def WriteEntryLog(
        self, request: pb.EntryLogEntry, context: Ctx
    ) -> pb.WriteEntryLogResponse:
        return pb.WriteEntryLogResponse(
            written=await self.store.write_entry_log(self._entry(request))
        )

    async def WriteEntryLogs(
        self, request: pb.EntryLogBatch, context: Ctx
    ) -> pb.WriteEntryLogsResponse:
        if len(request.entries) > MAX_LOG_BATCH:
            raise invalid("entries", f"at most {MAX_LOG_BATCH} rows per call")
        records: list[EntryLogRecord | None] = []
        refused: list[str] = []
        for entry in request.entries:
            try:
                records.append(self._entry(entry))
                refused.append("")
            except InventoryError as exc:
                if exc.kind is not Kind.INVALID_ARGUMENT:
                    raise
                records.append(None)  # this row is invalid; the others still go
                refused.append(exc.detail)
        written = await self.store.write_entry_logs([r for r in records if r is not None])
        outcomes = []
        for record, why in zip(records, refused, strict=True):
            first = record is not None and record.log_id in written
            if first:
                assert record is not None
                written.discard(record.log_id)  # a log id twice in the batch: the first wrote it
            outcomes.append(pb.EntryLogOutcome(written=first, refused=why))
        return pb.WriteEntryLogsResponse(outcomes=outcomes)

    def _entry(self, request: pb.EntryLogEntry) -> EntryLogRecord:
        if not math.isfinite(request.latency_ms) or request.latency_ms < 0:
            raise invalid("latency_ms", "must be a non-negative number")
        return EntryLogRecord(
            log_id=v.optional_uuid(request.log_id, "log_id") or str(uuid.uuid4()),
            seat_id=v.optional_uuid(request.seat_id, "seat_id"),
            event_id=v.optional_uuid(request.event_id, "event_id"),
            gate_id=v.optional_uuid(request.gate_id, "gate_id"),
            staff_user_id=v.optional_uuid(request.staff_user_id, "staff_user_id"),
            scan_id=v.optional_uuid(request.scan_id, "scan_id"),
            result=v.text_field(request.result, "result", 32),
            hall_presented=v.text_field(
                request.hall_presented, "hall_presented", 20, required=False
            )
            or None,
            hall_expected=v.text_field(request.hall_expected, "hall_expected", 20, required=False)
            or None,
            mode=v.choice_field(request.mode, "mode", MODES),
            scanned_at_ms=v.time_ms_field(
                request.scanned_at_ms, "scanned_at_ms", self.store.clock()
            ),
            latency_ms=request.latency_ms,
            detail=v.text_field(request.detail, "detail", v.MAX_TEXT, required=False),
        )

    async def ListEntryLogs(
        self, request: pb.ListEntryLogsRequest, context: Ctx
    ) -> pb.ListEntryLogsResponse:
        event_id = v.optional_uuid(request.event_id, "event_id")
        scan_id = v.optional_uuid(request.scan_id, "scan_id")
        if event_id is None and scan_id is None:
            raise invalid("event_id", "event_id or scan_id required")
        limit = v.limit_field(request.limit, default=100, maximum=1000)
        found = await self.store.list_entry_logs(event_id=event_id, scan_id=scan_id, limit=limit)
        return pb.ListEntryLogsResponse(entries=[entry_message(e) for e in found])
