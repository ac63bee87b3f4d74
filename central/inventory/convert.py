"""Store records <-> protobuf messages (None on our side is the proto default on the wire)."""

from __future__ import annotations

from central.inventory.store import EntryLogRecord, SeatRecord
from proto import inventory_pb2 as pb


def seat_message(seat: SeatRecord) -> pb.Seat:
    return pb.Seat(
        seat_id=seat.seat_id,
        event_id=seat.event_id,
        row=seat.row,
        number=seat.number,
        category=seat.category,
        status=seat.status,
        owner_user_id=seat.owner_user_id or "",
        owner_epoch=seat.owner_epoch,
        device_serial=seat.device_serial,
        hold_id=seat.hold_id or "",
        held_by_user_id=seat.held_by_user_id or "",
        held_until_ms=seat.held_until_ms or 0,
        checked_in_at_ms=seat.checked_in_at_ms or 0,
        checked_in_gate_id=seat.checked_in_gate_id or "",
        checked_in_scan_id=seat.checked_in_scan_id or "",
        updated_seq=seat.updated_seq,
        refunded_epoch=seat.refunded_epoch,
    )


def entry_message(entry: EntryLogRecord) -> pb.EntryLogEntry:
    return pb.EntryLogEntry(
        log_id=entry.log_id,
        seat_id=entry.seat_id or "",
        event_id=entry.event_id or "",
        gate_id=entry.gate_id or "",
        staff_user_id=entry.staff_user_id or "",
        scan_id=entry.scan_id or "",
        result=entry.result,
        hall_presented=entry.hall_presented or "",
        hall_expected=entry.hall_expected or "",
        mode=entry.mode,
        scanned_at_ms=entry.scanned_at_ms,
        latency_ms=entry.latency_ms,
        detail=entry.detail,
    )
