from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Seat(_message.Message):
    __slots__ = ("seat_id", "event_id", "row", "number", "category", "status", "owner_user_id", "owner_epoch", "hold_id", "held_by_user_id", "held_until_ms", "checked_in_at_ms", "checked_in_gate_id", "checked_in_scan_id", "updated_seq", "refunded_epoch", "device_serial")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_BY_USER_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    CHECKED_IN_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CHECKED_IN_GATE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKED_IN_SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_SEQ_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_EPOCH_FIELD_NUMBER: _ClassVar[int]
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    event_id: str
    row: str
    number: int
    category: str
    status: str
    owner_user_id: str
    owner_epoch: int
    hold_id: str
    held_by_user_id: str
    held_until_ms: int
    checked_in_at_ms: int
    checked_in_gate_id: str
    checked_in_scan_id: str
    updated_seq: int
    refunded_epoch: int
    device_serial: int
    def __init__(self, seat_id: _Optional[str] = ..., event_id: _Optional[str] = ..., row: _Optional[str] = ..., number: _Optional[int] = ..., category: _Optional[str] = ..., status: _Optional[str] = ..., owner_user_id: _Optional[str] = ..., owner_epoch: _Optional[int] = ..., hold_id: _Optional[str] = ..., held_by_user_id: _Optional[str] = ..., held_until_ms: _Optional[int] = ..., checked_in_at_ms: _Optional[int] = ..., checked_in_gate_id: _Optional[str] = ..., checked_in_scan_id: _Optional[str] = ..., updated_seq: _Optional[int] = ..., refunded_epoch: _Optional[int] = ..., device_serial: _Optional[int] = ...) -> None: ...

class ReserveSeatRequest(_message.Message):
    __slots__ = ("seat_id", "user_id", "hold_id", "ttl_seconds", "max_active_holds")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_HOLDS_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    user_id: str
    hold_id: str
    ttl_seconds: int
    max_active_holds: int
    def __init__(self, seat_id: _Optional[str] = ..., user_id: _Optional[str] = ..., hold_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., max_active_holds: _Optional[int] = ...) -> None: ...

class ConfirmSeatRequest(_message.Message):
    __slots__ = ("seat_id", "user_id", "hold_id")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    user_id: str
    hold_id: str
    def __init__(self, seat_id: _Optional[str] = ..., user_id: _Optional[str] = ..., hold_id: _Optional[str] = ...) -> None: ...

class ReleaseSeatRequest(_message.Message):
    __slots__ = ("seat_id", "hold_id")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    hold_id: str
    def __init__(self, seat_id: _Optional[str] = ..., hold_id: _Optional[str] = ...) -> None: ...

class ReleaseSeatResponse(_message.Message):
    __slots__ = ("released", "seat")
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    released: bool
    seat: Seat
    def __init__(self, released: _Optional[bool] = ..., seat: _Optional[_Union[Seat, _Mapping]] = ...) -> None: ...

class UpdateOwnerRequest(_message.Message):
    __slots__ = ("seat_id", "expected_owner_user_id", "new_owner_user_id")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    expected_owner_user_id: str
    new_owner_user_id: str
    def __init__(self, seat_id: _Optional[str] = ..., expected_owner_user_id: _Optional[str] = ..., new_owner_user_id: _Optional[str] = ...) -> None: ...

class RefundSeatRequest(_message.Message):
    __slots__ = ("seat_id", "owner_epoch")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    owner_epoch: int
    def __init__(self, seat_id: _Optional[str] = ..., owner_epoch: _Optional[int] = ...) -> None: ...

class RefundSeatResponse(_message.Message):
    __slots__ = ("refunded", "seat")
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    refunded: bool
    seat: Seat
    def __init__(self, refunded: _Optional[bool] = ..., seat: _Optional[_Union[Seat, _Mapping]] = ...) -> None: ...

class VerifyTicketRequest(_message.Message):
    __slots__ = ("seat_id",)
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    def __init__(self, seat_id: _Optional[str] = ...) -> None: ...

class MarkCheckedInRequest(_message.Message):
    __slots__ = ("seat_id", "owner_epoch", "gate_id", "scan_id", "checked_in_at_ms", "device_serial", "event_id", "entry_log")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    GATE_ID_FIELD_NUMBER: _ClassVar[int]
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKED_IN_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_LOG_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    owner_epoch: int
    gate_id: str
    scan_id: str
    checked_in_at_ms: int
    device_serial: int
    event_id: str
    entry_log: EntryLogEntry
    def __init__(self, seat_id: _Optional[str] = ..., owner_epoch: _Optional[int] = ..., gate_id: _Optional[str] = ..., scan_id: _Optional[str] = ..., checked_in_at_ms: _Optional[int] = ..., device_serial: _Optional[int] = ..., event_id: _Optional[str] = ..., entry_log: _Optional[_Union[EntryLogEntry, _Mapping]] = ...) -> None: ...

class UndoCheckInRequest(_message.Message):
    __slots__ = ("seat_id", "scan_id", "result", "detail")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    scan_id: str
    result: str
    detail: str
    def __init__(self, seat_id: _Optional[str] = ..., scan_id: _Optional[str] = ..., result: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class UndoCheckInResponse(_message.Message):
    __slots__ = ("undone", "seat")
    UNDONE_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    undone: bool
    seat: Seat
    def __init__(self, undone: _Optional[bool] = ..., seat: _Optional[_Union[Seat, _Mapping]] = ...) -> None: ...

class BindDeviceRequest(_message.Message):
    __slots__ = ("seat_id", "owner_user_id", "owner_epoch")
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    seat_id: str
    owner_user_id: str
    owner_epoch: int
    def __init__(self, seat_id: _Optional[str] = ..., owner_user_id: _Optional[str] = ..., owner_epoch: _Optional[int] = ...) -> None: ...

class NewSeat(_message.Message):
    __slots__ = ("row", "number", "category")
    ROW_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    row: str
    number: int
    category: str
    def __init__(self, row: _Optional[str] = ..., number: _Optional[int] = ..., category: _Optional[str] = ...) -> None: ...

class CreateSeatsRequest(_message.Message):
    __slots__ = ("event_id", "seats")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    seats: _containers.RepeatedCompositeFieldContainer[NewSeat]
    def __init__(self, event_id: _Optional[str] = ..., seats: _Optional[_Iterable[_Union[NewSeat, _Mapping]]] = ...) -> None: ...

class CreateSeatsResponse(_message.Message):
    __slots__ = ("seats_created", "seat_ids")
    SEATS_CREATED_FIELD_NUMBER: _ClassVar[int]
    SEAT_IDS_FIELD_NUMBER: _ClassVar[int]
    seats_created: int
    seat_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, seats_created: _Optional[int] = ..., seat_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListSeatsRequest(_message.Message):
    __slots__ = ("event_id", "owner_user_id", "statuses")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    owner_user_id: str
    statuses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., owner_user_id: _Optional[str] = ..., statuses: _Optional[_Iterable[str]] = ...) -> None: ...

class ListSeatsResponse(_message.Message):
    __slots__ = ("seats",)
    SEATS_FIELD_NUMBER: _ClassVar[int]
    seats: _containers.RepeatedCompositeFieldContainer[Seat]
    def __init__(self, seats: _Optional[_Iterable[_Union[Seat, _Mapping]]] = ...) -> None: ...

class SeatCountsRequest(_message.Message):
    __slots__ = ("event_ids",)
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SeatCounts(_message.Message):
    __slots__ = ("event_id", "by_status")
    class ByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    by_status: _containers.ScalarMap[str, int]
    def __init__(self, event_id: _Optional[str] = ..., by_status: _Optional[_Mapping[str, int]] = ...) -> None: ...

class SeatCountsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[SeatCounts]
    def __init__(self, events: _Optional[_Iterable[_Union[SeatCounts, _Mapping]]] = ...) -> None: ...

class ManifestRequest(_message.Message):
    __slots__ = ("event_ids", "cursor", "limit")
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    cursor: int
    limit: int
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ..., cursor: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ManifestResponse(_message.Message):
    __slots__ = ("seats", "cursor", "more")
    SEATS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    seats: _containers.RepeatedCompositeFieldContainer[Seat]
    cursor: int
    more: bool
    def __init__(self, seats: _Optional[_Iterable[_Union[Seat, _Mapping]]] = ..., cursor: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class EntryLogEntry(_message.Message):
    __slots__ = ("log_id", "seat_id", "event_id", "gate_id", "staff_user_id", "scan_id", "result", "hall_presented", "hall_expected", "mode", "scanned_at_ms", "latency_ms", "detail")
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    GATE_ID_FIELD_NUMBER: _ClassVar[int]
    STAFF_USER_ID_FIELD_NUMBER: _ClassVar[int]
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HALL_PRESENTED_FIELD_NUMBER: _ClassVar[int]
    HALL_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SCANNED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    log_id: str
    seat_id: str
    event_id: str
    gate_id: str
    staff_user_id: str
    scan_id: str
    result: str
    hall_presented: str
    hall_expected: str
    mode: str
    scanned_at_ms: int
    latency_ms: float
    detail: str
    def __init__(self, log_id: _Optional[str] = ..., seat_id: _Optional[str] = ..., event_id: _Optional[str] = ..., gate_id: _Optional[str] = ..., staff_user_id: _Optional[str] = ..., scan_id: _Optional[str] = ..., result: _Optional[str] = ..., hall_presented: _Optional[str] = ..., hall_expected: _Optional[str] = ..., mode: _Optional[str] = ..., scanned_at_ms: _Optional[int] = ..., latency_ms: _Optional[float] = ..., detail: _Optional[str] = ...) -> None: ...

class WriteEntryLogResponse(_message.Message):
    __slots__ = ("written",)
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    written: bool
    def __init__(self, written: _Optional[bool] = ...) -> None: ...

class EntryLogBatch(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[EntryLogEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[EntryLogEntry, _Mapping]]] = ...) -> None: ...

class EntryLogOutcome(_message.Message):
    __slots__ = ("written", "refused")
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    written: bool
    refused: str
    def __init__(self, written: _Optional[bool] = ..., refused: _Optional[str] = ...) -> None: ...

class WriteEntryLogsResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[EntryLogOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[EntryLogOutcome, _Mapping]]] = ...) -> None: ...

class ListEntryLogsRequest(_message.Message):
    __slots__ = ("event_id", "limit", "scan_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    limit: int
    scan_id: str
    def __init__(self, event_id: _Optional[str] = ..., limit: _Optional[int] = ..., scan_id: _Optional[str] = ...) -> None: ...

class ListEntryLogsResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[EntryLogEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[EntryLogEntry, _Mapping]]] = ...) -> None: ...
