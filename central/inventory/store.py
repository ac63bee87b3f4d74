"""Seat state and entry logs. Every seat change is ONE conditional statement whose affected row
decides the outcome; a refused change is only then explained by reading the seat.

On PostgreSQL each seat write takes a transaction-level advisory lock, so manifest cursor values (a
sequence) become visible in the order they were drawn: without it a gate could read cursor 7 while
the transaction holding 6 has not committed yet, and never see change 6. The lock is taken inside
the writing statement itself, run in autocommit, so it is held only while PostgreSQL executes that
one statement — never across a round trip to this (busy, single-threaded) process, which turned
the lock into a convoy under load. SQLite serialises writers on its single connection, which gives
the same order for free.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
from central.direct_sql import DirectPool, HotStatement
from central.inventory.errors import InventoryError, Kind
from central.inventory.schema import STATUSES, entry_logs, next_seq, seats

log = logging.getLogger(__name__)

# A check-in refused, yet admissible when its refusal is explained: a check-in was undone in
# between (UndoCheckIn). Tried again this often before answering ABORTED.
CHECK_IN_ATTEMPTS = 3
SEQ_LOCK_KEY = 7_314_001  # pg advisory lock: one seat writer at a time draws a cursor value
USER_LOCK_NAMESPACE = 7_314  # pg advisory lock (two-key form): one user's reserves in turn


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SeatRecord:
    seat_id: str
    event_id: str
    row: str
    number: int
    category: str
    status: str
    owner_user_id: str | None
    owner_epoch: int
    device_serial: int
    hold_id: str | None
    held_by_user_id: str | None
    held_until_ms: int | None
    last_hold_id: str | None
    last_hold_outcome: str | None
    checked_in_at_ms: int | None
    checked_in_gate_id: str | None
    checked_in_scan_id: str | None
    updated_seq: int
    created_at_ms: int
    updated_at_ms: int
    refunded_epoch: int = 0

    @classmethod
    def from_row(cls, row: Any) -> SeatRecord:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class NewSeatSpec:
    row: str
    number: int
    category: str


@dataclass(frozen=True)
class EntryLogRecord:
    log_id: str
    seat_id: str | None
    event_id: str | None
    gate_id: str | None
    staff_user_id: str | None
    scan_id: str | None
    result: str
    hall_presented: str | None
    hall_expected: str | None
    mode: str
    scanned_at_ms: int
    latency_ms: float
    detail: str

    @classmethod
    def from_row(cls, row: Any) -> EntryLogRecord:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class ManifestPage:
    seats: list[SeatRecord]
    cursor: int
    more: bool


_CLEAR_HOLD: dict[str, Any] = {"hold_id": None, "held_by_user_id": None, "held_until_ms": None}


# The scan path's statements, built once (central/direct_sql.py). Parameter names start with
# "p_" where a column of the same name is set by the statement.
SEAT_BY_ID = HotStatement(sa.select(seats).where(seats.c.seat_id == sa.bindparam("p_seat_id")))
ENTRY_LOG_INSERT = HotStatement(entry_logs.insert())


def _admission(dialect: str, with_device: bool, with_event: bool, *also: Any) -> sa.Update:
    """The admission's seat update, both dialects: SOLD at the token's owner epoch (and device,
    and event, when given) becomes CHECKED_IN, returning the seat. `also`: further conditions.
    Parameters: p_seat_id, p_owner_epoch, [p_device_serial], [p_event_id], p_at_ms, p_gate_id,
    p_scan_id, p_now_ms."""
    current = [
        seats.c.seat_id == sa.bindparam("p_seat_id"),
        seats.c.status == "SOLD",
        seats.c.owner_epoch == sa.bindparam("p_owner_epoch"),
    ]
    if with_device:
        current.append(seats.c.device_serial == sa.bindparam("p_device_serial"))
    if with_event:
        current.append(seats.c.event_id == sa.bindparam("p_event_id"))
    current.extend(also)  # last, as the cursor lock always was
    return (
        seats.update()
        .where(*current)
        .values(
            status="CHECKED_IN",
            checked_in_at_ms=sa.bindparam("p_at_ms"),
            checked_in_gate_id=sa.bindparam("p_gate_id"),
            checked_in_scan_id=sa.bindparam("p_scan_id"),
            updated_seq=next_seq(dialect),
            updated_at_ms=sa.bindparam("p_now_ms"),
        )
        .returning(*seats.c)
    )


def _check_in_statement(with_device: bool, with_event: bool) -> HotStatement:
    """PostgreSQL's admission: the seat update (cursor lock inside it) as a CTE, and the
    admission's entry-log row inserted from it — so the row exists exactly when the update
    happened — in one autocommit statement. Parameters: _admission's, and log_<column> for the
    row."""
    lock = sa.select(sa.func.pg_advisory_xact_lock(SEQ_LOCK_KEY)).scalar_subquery()
    won = _admission("postgresql", with_device, with_event, lock.is_not(None)).cte("won")
    columns = [c.name for c in entry_logs.c]
    source = sa.select(
        *(sa.bindparam(f"log_{c}", type_=entry_logs.c[c].type).label(c) for c in columns)
    ).select_from(won)
    logged = pg_insert(entry_logs).from_select(columns, source).on_conflict_do_nothing()
    # A refusal answers with the seat as this statement's snapshot has it, so the caller judges
    # it without a second round trip. That snapshot can be older than the row the UPDATE
    # re-checked after waiting on a concurrent writer: the caller then sees an admissible seat,
    # and tries again (mark_checked_in).
    admitted = sa.select(won, sa.true().label("admitted"))
    refused = sa.select(seats, sa.false().label("admitted")).where(
        seats.c.seat_id == sa.bindparam("p_seat_id"), ~sa.exists(sa.select(won.c.seat_id))
    )
    return HotStatement(sa.union_all(admitted, refused).add_cte(logged.cte("logged")))


SHAPES = [
    (with_device, with_event) for with_device in (False, True) for with_event in (False, True)
]
CHECK_IN = {shape: _check_in_statement(*shape) for shape in SHAPES}
# SQLite's admission, the seat half: run with the entry-log row's insert (SQLITE_ENTRY_LOG_KEEP)
# in one transaction
SQLITE_CHECK_IN = {shape: HotStatement(_admission("sqlite", *shape)) for shape in SHAPES}
# an admission's row; one already there (the same log id) is kept
SQLITE_ENTRY_LOG_KEEP = HotStatement(sqlite_insert(entry_logs).on_conflict_do_nothing())


def _cursor_lock() -> sa.ScalarSelect[Any]:
    """The cursor lock as an uncorrelated sub-select: taken inside the writing statement and
    released by its own (autocommit) commit."""
    return sa.select(sa.func.pg_advisory_xact_lock(SEQ_LOCK_KEY)).scalar_subquery()


def _hot_seat_update(dialect: str, where: list[Any], values: dict[str, Any]) -> HotStatement:
    """A seat UPDATE built once: `where` and `values` plus what every seat write carries — the
    cursor lock (PostgreSQL), the next cursor value and p_updated_at — answering the seat."""
    if dialect == "postgresql":
        where = [*where, _cursor_lock().is_not(None)]
    return HotStatement(
        seats.update()
        .where(*where)
        .values(
            **values,
            updated_seq=next_seq(dialect),
            updated_at_ms=sa.bindparam("p_updated_at", type_=sa.BigInteger),
        )
        .returning(*seats.c)
    )


@functools.cache
def _hold_statement(dialect: str, with_limit: bool) -> HotStatement:
    """ReserveSeat's one UPDATE: the seat is free (or its hold lapsed) and, with a limit, the
    user holds fewer than p_max_holds live seats. Parameters: p_seat_id, p_user_id, p_hold_id,
    p_now, p_until, p_updated_at [, p_max_holds]."""
    held = seats.c.status == "HELD"
    now = sa.bindparam("p_now", type_=sa.BigInteger)
    user = sa.bindparam("p_user_id", type_=sa.String)
    where: list[Any] = [
        seats.c.seat_id == sa.bindparam("p_seat_id"),
        sa.or_(seats.c.status == "AVAILABLE", sa.and_(held, seats.c.held_until_ms <= now)),
    ]
    if with_limit:
        mine = seats.alias("mine")  # not correlated to the row being updated
        live = (
            sa.select(sa.func.count())
            .select_from(mine)
            .where(
                mine.c.held_by_user_id == user, mine.c.status == "HELD", mine.c.held_until_ms > now
            )
            .scalar_subquery()
        )
        where.append(live < sa.bindparam("p_max_holds", type_=sa.Integer))
    return _hot_seat_update(
        dialect,
        where,
        {
            "status": "HELD",
            "hold_id": sa.bindparam("p_hold_id", type_=sa.String),
            "held_by_user_id": user,
            "held_until_ms": sa.bindparam("p_until", type_=sa.BigInteger),
            # Taking over a lapsed hold records how that hold ended.
            "last_hold_id": sa.case((held, seats.c.hold_id), else_=seats.c.last_hold_id),
            "last_hold_outcome": sa.case((held, "EXPIRED"), else_=seats.c.last_hold_outcome),
        },
    )


@functools.cache
def _sell_statement(dialect: str) -> HotStatement:
    """ConfirmSeat's one UPDATE: the seat is still held by this hold, for this user, unexpired.
    Parameters: p_seat_id, p_user_id, p_hold_id, p_now, p_updated_at."""
    user = sa.bindparam("p_user_id", type_=sa.String)
    hold = sa.bindparam("p_hold_id", type_=sa.String)
    where: list[Any] = [
        seats.c.seat_id == sa.bindparam("p_seat_id"),
        seats.c.status == "HELD",
        seats.c.hold_id == hold,
        seats.c.held_by_user_id == user,
        seats.c.held_until_ms > sa.bindparam("p_now", type_=sa.BigInteger),
    ]
    return _hot_seat_update(
        dialect,
        where,
        {
            "hold_id": sa.null(),
            "held_by_user_id": sa.null(),
            "held_until_ms": sa.null(),
            "status": "SOLD",
            "owner_user_id": user,
            "owner_epoch": seats.c.owner_epoch + 1,
            "last_hold_id": hold,
            "last_hold_outcome": "SOLD",
        },
    )


# One user's reserves in turn (the two-key form: its key space never meets the cursor lock).
_USER_KEY = (sa.literal(USER_LOCK_NAMESPACE, sa.Integer), sa.func.hashtext(sa.bindparam("p_user")))
USER_LOCK = HotStatement(sa.select(sa.func.pg_advisory_lock(*_USER_KEY)))
USER_UNLOCK = HotStatement(sa.select(sa.func.pg_advisory_unlock(*_USER_KEY)))


def _not_found(seat_id: str) -> InventoryError:
    return InventoryError(Kind.NOT_FOUND, "SEAT_NOT_FOUND", f"no seat {seat_id}")


class InventoryStore:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], int] = now_ms):
        self.engine = engine
        self.clock = clock
        self._dialect = engine.dialect.name
        # the scan path's statements, run without SQLAlchemy's execution layer on PostgreSQL
        self.direct = DirectPool.of(engine)

    # ----- plumbing -----
    @asynccontextmanager
    async def _seat_txn(self) -> AsyncIterator[AsyncConnection]:
        """A transaction holding the cursor lock throughout (bulk inserts of many statements)."""
        async with self.engine.begin() as conn:
            if self._dialect == "postgresql":
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEQ_LOCK_KEY})
            yield conn

    async def _write_statement(self, stmt: Any, *, serialize_user: str | None = None) -> list[Any]:
        """Run one seat-writing statement and answer its RETURNING rows (as mappings).

        `serialize_user`: the statement counts that user's seats in its own WHERE; on PostgreSQL
        a per-user session lock is held around it, so the statement's snapshot is taken after
        every earlier statement of that user has committed (READ COMMITTED would otherwise let
        two of them count the same rows). SQLite runs one writer at a time anyway."""
        if self._dialect != "postgresql":
            async with self.engine.begin() as conn:
                return list((await conn.execute(stmt)).mappings().all())
        # The lock as an uncorrelated sub-select: evaluated inside the statement, released by the
        # statement's own commit (autocommit).
        lock = sa.select(sa.func.pg_advisory_xact_lock(SEQ_LOCK_KEY)).scalar_subquery()
        async with autocommit(self.engine).connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            if serialize_user is None:
                return list((await conn.execute(stmt.where(lock.is_not(None)))).mappings().all())
            # The two-key form: its key space never meets the one-key cursor lock.
            key = {"ns": USER_LOCK_NAMESPACE, "u": serialize_user}
            await conn.execute(sa.text("SELECT pg_advisory_lock(:ns, hashtext(:u))"), key)
            try:
                rows = (await conn.execute(stmt.where(lock.is_not(None)))).mappings().all()
            finally:
                await conn.execute(sa.text("SELECT pg_advisory_unlock(:ns, hashtext(:u))"), key)
            return list(rows)

    async def _write_hot(
        self, hot: HotStatement, params: dict[str, Any], *, serialize_user: str | None = None
    ) -> SeatRecord | None:
        """`_write_statement` for a statement built once: the same locks, on the driver."""
        if not self.direct.direct:
            async with self.direct.transaction() as txn:  # SQLite: one writer at a time
                row = await txn.fetchrow(hot, params)
        elif serialize_user is None:
            row = await self.direct.fetchrow(hot, params)
        else:
            async with self.direct.session() as conn:
                await conn.fetch(USER_LOCK, {"p_user": serialize_user})
                try:
                    row = await conn.fetchrow(hot, params)
                finally:
                    await conn.fetch(USER_UNLOCK, {"p_user": serialize_user})
        return SeatRecord.from_row(row) if row is not None else None

    async def _update_one(
        self,
        seat_id: str,
        where: Sequence[Any],
        values: dict[str, Any],
        *,
        serialize_user: str | None = None,
    ) -> SeatRecord | None:
        stmt = (
            seats.update()
            .where(seats.c.seat_id == seat_id, *where)
            .values(**values, updated_seq=next_seq(self._dialect), updated_at_ms=self.clock())
            .returning(*seats.c)
        )
        rows = await self._write_statement(stmt, serialize_user=serialize_user)
        return SeatRecord.from_row(rows[0]) if rows else None

    async def get_seat(self, seat_id: str) -> SeatRecord | None:
        row = await self.direct.fetchrow(SEAT_BY_ID, {"p_seat_id": seat_id})
        return SeatRecord.from_row(row) if row is not None else None

    async def require_seat(self, seat_id: str) -> SeatRecord:
        seat = await self.get_seat(seat_id)
        if seat is None:
            raise _not_found(seat_id)
        return seat

    # ----- holds and sales -----
    async def reserve(
        self,
        seat_id: str,
        user_id: str,
        hold_id: str,
        ttl_seconds: int,
        max_active_holds: int = 0,
    ) -> SeatRecord:
        """Hold the seat if it is free (or its hold lapsed) and, with a limit, the user holds
        fewer than max_active_holds live seats: both decided by the one UPDATE."""
        now = self.clock()
        params = {
            "p_seat_id": seat_id,
            "p_user_id": user_id,
            "p_hold_id": hold_id,
            "p_now": now,
            "p_until": now + ttl_seconds * 1000,
            "p_updated_at": self.clock(),
        }
        if max_active_holds > 0:
            params["p_max_holds"] = max_active_holds
        won = await self._write_hot(
            _hold_statement(self._dialect, max_active_holds > 0),
            params,
            serialize_user=user_id if max_active_holds > 0 else None,
        )
        if won is not None:
            log.info("seat %s held by %s (hold %s)", seat_id, user_id, hold_id)
            return won
        seat = await self.require_seat(seat_id)
        if seat.status == "HELD" and seat.hold_id == hold_id and seat.held_by_user_id == user_id:
            return seat  # a retry of the reserve that already took effect
        free = seat.status == "AVAILABLE" or (
            seat.status == "HELD" and (seat.held_until_ms or 0) <= now
        )
        if free and max_active_holds > 0:
            raise InventoryError(
                Kind.FAILED_PRECONDITION,
                "HOLD_LIMIT_REACHED",
                f"the user already holds {max_active_holds} seats; pay for or release one first",
                seat,
            )
        if seat.status in ("SOLD", "CHECKED_IN"):
            raise InventoryError(
                Kind.FAILED_PRECONDITION, "SEAT_ALREADY_SOLD", f"seat is {seat.status}", seat
            )
        if seat.status == "HELD":
            raise InventoryError(
                Kind.FAILED_PRECONDITION,
                "SEAT_UNAVAILABLE",
                f"seat is HELD until {iso_ms(seat.held_until_ms)}",
                seat,
            )
        raise InventoryError(Kind.ABORTED, "CONCURRENT_UPDATE", "seat changed meanwhile; retry")

    async def confirm(self, seat_id: str, user_id: str, hold_id: str) -> SeatRecord:
        now = self.clock()
        won = await self._write_hot(
            _sell_statement(self._dialect),
            {
                "p_seat_id": seat_id,
                "p_user_id": user_id,
                "p_hold_id": hold_id,
                "p_now": now,
                "p_updated_at": self.clock(),
            },
        )
        if won is not None:
            log.info("seat %s sold to %s (hold %s)", seat_id, user_id, hold_id)
            return won
        seat = await self.require_seat(seat_id)
        if (
            seat.status in ("SOLD", "CHECKED_IN")
            and seat.last_hold_outcome == "SOLD"
            and seat.last_hold_id == hold_id
            and seat.owner_user_id == user_id
        ):
            return seat  # a retry of the confirm that already took effect
        raise self._why_not_held(seat, user_id, hold_id)

    @staticmethod
    def _why_not_held(seat: SeatRecord, user_id: str, hold_id: str) -> InventoryError:
        precondition = Kind.FAILED_PRECONDITION
        if seat.status == "HELD" and seat.hold_id == hold_id:
            if seat.held_by_user_id != user_id:
                return InventoryError(precondition, "SEAT_NOT_HELD", "held by another user", seat)
            return InventoryError(
                precondition, "HOLD_EXPIRED", f"hold expired at {iso_ms(seat.held_until_ms)}", seat
            )
        if seat.last_hold_id == hold_id and seat.last_hold_outcome == "EXPIRED":
            return InventoryError(
                precondition, "HOLD_EXPIRED", "hold expired and was released", seat
            )
        if seat.last_hold_id == hold_id and seat.last_hold_outcome == "RELEASED":
            return InventoryError(precondition, "SEAT_NOT_HELD", "hold was released", seat)
        return InventoryError(
            precondition, "SEAT_NOT_HELD", f"seat is {seat.status}, not held by this hold", seat
        )

    async def release(self, seat_id: str, hold_id: str) -> tuple[bool, SeatRecord]:
        now = self.clock()
        won = await self._update_one(
            seat_id,
            [seats.c.status == "HELD", seats.c.hold_id == hold_id],
            {
                **_CLEAR_HOLD,
                "status": "AVAILABLE",
                "last_hold_id": hold_id,
                "last_hold_outcome": sa.case(
                    (seats.c.held_until_ms <= now, "EXPIRED"), else_="RELEASED"
                ),
            },
        )
        if won is not None:
            log.info("seat %s released (hold %s)", seat_id, hold_id)
            return True, won
        return False, await self.require_seat(seat_id)

    async def release_expired(
        self, now: int | None = None, limit: int = 500
    ) -> list[tuple[str, str]]:
        """Release up to `limit` lapsed holds in one statement; (seat_id, hold_id) of each."""
        now = self.clock() if now is None else now
        lapsed = sa.and_(seats.c.status == "HELD", seats.c.held_until_ms <= now)
        src = seats.alias("lapsed")
        batch = (
            sa.select(src.c.seat_id)
            .where(src.c.status == "HELD", src.c.held_until_ms <= now)
            .order_by(src.c.held_until_ms)
            .limit(limit)
        )
        stmt = (
            seats.update()
            .where(seats.c.seat_id.in_(batch), lapsed)
            .values(
                **_CLEAR_HOLD,
                status="AVAILABLE",
                last_hold_id=seats.c.hold_id,
                last_hold_outcome="EXPIRED",
                updated_seq=next_seq(self._dialect),
                updated_at_ms=self.clock(),
            )
            .returning(seats.c.seat_id, seats.c.last_hold_id)
        )
        rows = await self._write_statement(stmt)
        return [(r["seat_id"], r["last_hold_id"]) for r in rows]

    # ----- ownership and check-in -----
    async def update_owner(self, seat_id: str, expected_owner: str, new_owner: str) -> SeatRecord:
        won = await self._update_one(
            seat_id,
            [seats.c.status == "SOLD", seats.c.owner_user_id == expected_owner],
            {"owner_user_id": new_owner, "owner_epoch": seats.c.owner_epoch + 1},
        )
        if won is not None:
            log.info("seat %s owner changed to %s (epoch %s)", seat_id, new_owner, won.owner_epoch)
            return won
        seat = await self.require_seat(seat_id)
        if seat.status == "CHECKED_IN":
            raise InventoryError(
                Kind.FAILED_PRECONDITION, "SEAT_CHECKED_IN", "seat is already checked in", seat
            )
        if seat.status != "SOLD":
            raise InventoryError(
                Kind.FAILED_PRECONDITION, "SEAT_NOT_SOLD", f"seat is {seat.status}", seat
            )
        if seat.owner_user_id != expected_owner:
            raise InventoryError(
                Kind.ABORTED, "NOT_SEAT_OWNER", f"seat is owned by {seat.owner_user_id}", seat
            )
        raise InventoryError(Kind.ABORTED, "CONCURRENT_UPDATE", "seat changed meanwhile; retry")

    async def bind_device(self, seat_id: str, owner: str, owner_epoch: int) -> SeatRecord:
        won = await self._update_one(
            seat_id,
            [
                seats.c.status == "SOLD",
                seats.c.owner_user_id == owner,
                seats.c.owner_epoch == owner_epoch,
            ],
            {"device_serial": seats.c.device_serial + 1},
        )
        if won is not None:
            log.info("seat %s device serial %s", seat_id, won.device_serial)
            return won
        seat = await self.require_seat(seat_id)
        if seat.status != "SOLD":
            raise InventoryError(
                Kind.FAILED_PRECONDITION, "SEAT_NOT_SOLD", f"seat is {seat.status}", seat
            )
        raise InventoryError(
            Kind.ABORTED, "STALE_EPOCH", "the seat's owner or epoch moved on; read it again", seat
        )

    async def mark_checked_in(
        self,
        seat_id: str,
        owner_epoch: int,
        gate_id: str | None,
        scan_id: str,
        at_ms: int,
        device_serial: int = 0,
        entry: EntryLogRecord | None = None,
        event_id: str = "",
    ) -> SeatRecord:
        """`entry`: the admission's entry-log row, written in the same atomic write as the
        check-in when this call wins it (never when it loses or repeats a won check-in).
        `event_id`: admit only a seat of this event (the caller judged it open at its gate)."""
        direct = entry is not None  # a prebuilt admission: nothing to build per scan
        admit: Any = None
        if not direct:
            current = [seats.c.status == "SOLD", seats.c.owner_epoch == owner_epoch]
            if device_serial:
                # a TR2 code admits only while its device is the seat's current one
                current.append(seats.c.device_serial == device_serial)
            if event_id:
                current.append(seats.c.event_id == event_id)
            admit = (
                seats.update()
                .where(seats.c.seat_id == seat_id, *current)
                .values(
                    status="CHECKED_IN",
                    checked_in_at_ms=at_ms,
                    checked_in_gate_id=gate_id,
                    checked_in_scan_id=scan_id,
                    updated_seq=next_seq(self._dialect),
                    updated_at_ms=self.clock(),
                )
            )
        for _ in range(CHECK_IN_ATTEMPTS):
            if direct:
                assert entry is not None
                rows = await self._check_in_direct(
                    seat_id, owner_epoch, gate_id, scan_id, at_ms, device_serial, entry, event_id
                )
            else:
                rows = await self._seat_write_with_log(admit, entry, self._log_insert)
            if rows and rows[0].get("admitted", True):
                log.info("seat %s checked in at gate %s (scan %s)", seat_id, gate_id, scan_id)
                return SeatRecord.from_row(rows[0])
            # PostgreSQL's admission answers a refusal with the seat (CHECK_IN); else read it
            seat = SeatRecord.from_row(rows[0]) if rows else await self.require_seat(seat_id)
            if event_id and seat.event_id != event_id:
                raise InventoryError(
                    Kind.FAILED_PRECONDITION,
                    "OTHER_EVENT",
                    f"seat is of event {seat.event_id}, not {event_id}",
                    seat,
                )
            admissible = (
                seat.status == "SOLD"
                and seat.owner_epoch == owner_epoch
                and (not device_serial or seat.device_serial == device_serial)
            )
            if seat.status == "CHECKED_IN" and seat.checked_in_scan_id == scan_id:
                return seat  # the same scan again: the admission it won stands
            if not admissible:
                raise self._why_not_checked_in(seat, owner_epoch, device_serial)
            # refused, yet admissible now: a check-in was undone between the write and this read
        raise InventoryError(Kind.ABORTED, "CONCURRENT_UPDATE", "seat changed meanwhile; retry")

    async def _check_in_direct(
        self,
        seat_id: str,
        owner_epoch: int,
        gate_id: str | None,
        scan_id: str,
        at_ms: int,
        device_serial: int,
        entry: EntryLogRecord,
        event_id: str = "",
    ) -> list[Any]:
        now = self.clock()
        params: dict[str, Any] = {
            "p_seat_id": seat_id,
            "p_owner_epoch": owner_epoch,
            "p_at_ms": at_ms,
            "p_gate_id": gate_id,
            "p_scan_id": scan_id,
            "p_now_ms": now,
            **{f"log_{f.name}": getattr(entry, f.name) for f in fields(entry)},
            "log_created_at_ms": now,
        }
        if device_serial:
            params["p_device_serial"] = device_serial
        if event_id:
            params["p_event_id"] = event_id
        shape = (bool(device_serial), bool(event_id))
        if self._dialect == "postgresql":
            return await self.direct.fetch(CHECK_IN[shape], params)
        async with self.direct.transaction() as txn:  # SQLite: two statements, one transaction
            rows = await txn.fetch(SQLITE_CHECK_IN[shape], params)
            if rows:
                row = {f.name: getattr(entry, f.name) for f in fields(entry)}
                row["created_at_ms"] = now
                await txn.execute(SQLITE_ENTRY_LOG_KEEP, row)
        return rows

    @staticmethod
    def _why_not_checked_in(
        seat: SeatRecord, owner_epoch: int, device_serial: int
    ) -> InventoryError:
        if seat.status == "CHECKED_IN":
            return InventoryError(
                Kind.ALREADY_EXISTS,
                "ALREADY_CHECKED_IN",
                f"checked in at gate {seat.checked_in_gate_id or '-'} "
                f"at {iso_ms(seat.checked_in_at_ms)}",
                seat,
            )
        if seat.status == "SOLD" and seat.owner_epoch == owner_epoch:
            return InventoryError(
                Kind.ABORTED,
                "DEVICE_REPLACED",
                f"code of device {device_serial}, seat's device {seat.device_serial}",
                seat,
            )
        if seat.status == "SOLD":
            return InventoryError(
                Kind.ABORTED,
                "STALE_EPOCH",
                f"ticket epoch {owner_epoch}, seat epoch {seat.owner_epoch}",
                seat,
            )
        return InventoryError(
            Kind.FAILED_PRECONDITION, "SEAT_NOT_SOLD", f"seat is {seat.status}", seat
        )

    async def undo_check_in(
        self, seat_id: str, scan_id: str, result: str, detail: str
    ) -> tuple[bool, SeatRecord]:
        """CHECKED_IN by exactly `scan_id` -> SOLD again, and that scan's SUCCESS entry-log row
        rewritten to `result` (the gate's own verdict), in one atomic write: a gate turned the
        holder away while central's late verdict admitted them, and the door is what happened.
        (undone, seat); (False, seat) when the seat is not checked in by this scan — a repeat, or
        another scan's admission, which this never touches."""
        undo = (
            seats.update()
            .where(
                seats.c.seat_id == seat_id,
                seats.c.status == "CHECKED_IN",
                seats.c.checked_in_scan_id == scan_id,
            )
            .values(
                status="SOLD",
                checked_in_at_ms=None,
                checked_in_gate_id=None,
                checked_in_scan_id=None,
                updated_seq=next_seq(self._dialect),
                updated_at_ms=self.clock(),
            )
        )

        def relog(won: Any, scan_id: str) -> Any:
            # the row MarkCheckedIn wrote for this scan now says what the gate did (offline)
            stmt = (
                entry_logs.update()
                .where(entry_logs.c.scan_id == scan_id, entry_logs.c.result == "SUCCESS")
                .values(result=result, detail=detail, mode="offline")
            )
            if won is not None:  # PostgreSQL: only when the seat update (the CTE) took effect
                stmt = stmt.where(sa.exists(sa.select(won.c.seat_id)))
            return stmt

        rows = await self._seat_write_with_log(undo, scan_id, relog)
        if rows:
            log.warning(
                "seat %s check-in by scan %s undone: the gate turned the holder away (%s)",
                seat_id,
                scan_id,
                result,
            )
            return True, SeatRecord.from_row(rows[0])
        return False, await self.require_seat(seat_id)

    def _log_insert(self, won: Any, entry: EntryLogRecord) -> Any:
        """INSERT of an admission's entry-log row; on PostgreSQL fed by the seat-update CTE `won`,
        so it happens exactly when the seat update does. A row already there (the same log id) is
        kept."""
        values = {f.name: getattr(entry, f.name) for f in fields(entry)}
        values["created_at_ms"] = self.clock()
        insert = pg_insert if self._dialect == "postgresql" else sqlite_insert
        if won is None:
            return insert(entry_logs).values(**values).on_conflict_do_nothing()
        columns = list(values)
        source = sa.select(
            *(sa.literal(values[c], entry_logs.c[c].type).label(c) for c in columns)
        ).select_from(won)
        return insert(entry_logs).from_select(columns, source).on_conflict_do_nothing()

    async def _seat_write_with_log(
        self, seat_update: Any, log_arg: Any, log_statement: Callable[..., Any]
    ) -> list[Any]:
        """One seat UPDATE and, only when it changed the seat, one entry-log write — atomically.
        PostgreSQL: a single statement (the seat update a data-modifying CTE the log write reads
        from, the cursor lock inside it, autocommit: no lock held across a round trip). SQLite:
        one transaction (its single writer serialises it anyway). Answers the seat rows."""
        if log_arg is None:
            return await self._write_statement(seat_update.returning(*seats.c))
        if self._dialect != "postgresql":
            async with self.engine.begin() as conn:
                rows = list((await conn.execute(seat_update.returning(*seats.c))).mappings().all())
                if rows:
                    await conn.execute(log_statement(None, log_arg))
                return rows
        lock = sa.select(sa.func.pg_advisory_xact_lock(SEQ_LOCK_KEY)).scalar_subquery()
        won = seat_update.where(lock.is_not(None)).returning(*seats.c).cte("won")
        logged = log_statement(won, log_arg).cte("logged")
        stmt = sa.select(won).add_cte(logged)
        async with autocommit(self.engine).connect() as conn:
            return list((await conn.execute(stmt)).mappings().all())

    async def refund(self, seat_id: str, owner_epoch: int) -> tuple[bool, SeatRecord]:
        """SOLD or CHECKED_IN at `owner_epoch` -> AVAILABLE with no owner, owner_epoch + 1, and
        refunded_epoch = owner_epoch (its codes now answer CANCELLED). (refunded, seat); a repeat
        after it took effect answers (False, seat). ABORTED when the owner epoch moved on."""
        won = await self._update_one(
            seat_id,
            [seats.c.status.in_(("SOLD", "CHECKED_IN")), seats.c.owner_epoch == owner_epoch],
            {
                **_CLEAR_HOLD,
                "status": "AVAILABLE",
                "owner_user_id": None,
                "owner_epoch": seats.c.owner_epoch + 1,
                "refunded_epoch": owner_epoch,
                "checked_in_at_ms": None,
                "checked_in_gate_id": None,
                "checked_in_scan_id": None,
            },
        )
        if won is not None:
            log.info("seat %s refunded (epoch %s)", seat_id, owner_epoch)
            return True, won
        seat = await self.require_seat(seat_id)
        if seat.refunded_epoch == owner_epoch and seat.owner_epoch == owner_epoch + 1:
            return False, seat  # our earlier try took effect
        if seat.status not in ("SOLD", "CHECKED_IN"):
            raise InventoryError(
                Kind.FAILED_PRECONDITION, "SEAT_NOT_SOLD", f"seat is {seat.status}", seat
            )
        raise InventoryError(
            Kind.ABORTED,
            "STALE_EPOCH",
            f"refund of epoch {owner_epoch}, seat epoch {seat.owner_epoch}",
            seat,
        )

    # ----- admin -----
    async def create_seats(self, event_id: str, specs: Sequence[NewSeatSpec]) -> list[str]:
        now = self.clock()
        ids = [str(uuid.uuid4()) for _ in specs]
        rows = [
            {
                "seat_id": seat_id,
                "event_id": event_id,
                "row": spec.row,
                "number": spec.number,
                "category": spec.category,
                "status": "AVAILABLE",
                "owner_epoch": 0,
                "created_at_ms": now,
                "updated_at_ms": now,
            }
            for seat_id, spec in zip(ids, specs, strict=True)
        ]
        stmt = seats.insert().values(updated_seq=next_seq(self._dialect))
        try:
            async with self._seat_txn() as conn:
                await conn.execute(stmt, rows)
        except sa.exc.IntegrityError:
            raise InventoryError(
                Kind.ALREADY_EXISTS, "SEAT_EXISTS", "a seat with that row and number exists"
            ) from None
        log.info("created %d seats for event %s", len(ids), event_id)
        return ids

    async def list_seats(
        self,
        *,
        event_id: str | None = None,
        owner_user_id: str | None = None,
        statuses: Sequence[str] = (),
    ) -> list[SeatRecord]:
        query = sa.select(seats).order_by(seats.c.event_id, seats.c.row, seats.c.number)
        if event_id:
            query = query.where(seats.c.event_id == event_id)
        if owner_user_id:
            query = query.where(seats.c.owner_user_id == owner_user_id)
        if statuses:
            query = query.where(seats.c.status.in_(list(statuses)))
        async with autocommit(self.engine).connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [SeatRecord.from_row(r) for r in rows]

    async def seat_counts(self, event_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        counts = {e: dict.fromkeys(STATUSES, 0) for e in event_ids}
        query = (
            sa.select(seats.c.event_id, seats.c.status, sa.func.count())
            .where(seats.c.event_id.in_(list(event_ids)))
            .group_by(seats.c.event_id, seats.c.status)
        )
        async with autocommit(self.engine).connect() as conn:
            for event_id, status, n in (await conn.execute(query)).all():
                counts[event_id][status] = int(n)
        return counts

    async def manifest(self, event_ids: Sequence[str], cursor: int, limit: int) -> ManifestPage:
        """Seats of the events changed after `cursor`, oldest change first.

        A page never ends in the middle of one cursor value (several rows may share one on
        SQLite), so passing back the returned cursor loses nothing and repeats nothing.
        """
        of_events = seats.c.event_id.in_(list(event_ids))
        async with autocommit(self.engine).connect() as conn:
            rows = (
                (
                    await conn.execute(
                        sa.select(seats)
                        .where(of_events, seats.c.updated_seq > cursor)
                        .order_by(seats.c.updated_seq, seats.c.seat_id)
                        .limit(limit + 1)
                    )
                )
                .mappings()
                .all()
            )
            page = [SeatRecord.from_row(r) for r in rows[:limit]]
            if len(rows) <= limit:
                return ManifestPage(page, page[-1].updated_seq if page else cursor, False)
            boundary = page[-1].updated_seq
            if rows[limit]["updated_seq"] == boundary:
                ties = (
                    (
                        await conn.execute(
                            sa.select(seats)
                            .where(
                                of_events,
                                seats.c.updated_seq == boundary,
                                seats.c.seat_id > page[-1].seat_id,
                            )
                            .order_by(seats.c.seat_id)
                        )
                    )
                    .mappings()
                    .all()
                )
                page.extend(SeatRecord.from_row(r) for r in ties)
                later = await conn.scalar(
                    sa.select(seats.c.seat_id)
                    .where(of_events, seats.c.updated_seq > boundary)
                    .limit(1)
                )
                return ManifestPage(page, boundary, later is not None)
        return ManifestPage(page, boundary, True)

    # ----- entry logs -----
    async def write_entry_log(self, entry: EntryLogRecord) -> bool:
        """Insert one scan record; False when that log_id was written before (a retried upload)."""
        values = {f.name: getattr(entry, f.name) for f in fields(entry)}
        values["created_at_ms"] = self.clock()
        try:
            await self.direct.execute(ENTRY_LOG_INSERT, values)
        except sa.exc.IntegrityError:
            return False
        return True

    async def write_entry_logs(self, entries: Sequence[EntryLogRecord]) -> set[str]:
        """Insert many scan records in one statement; the log ids this call wrote (a log id
        written before, or twice in the batch, is written once)."""
        if not entries:
            return set()
        now = self.clock()
        rows = [
            {**{f.name: getattr(e, f.name) for f in fields(e)}, "created_at_ms": now}
            for e in entries
        ]
        insert = pg_insert if self._dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(entry_logs)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[entry_logs.c.log_id])
            .returning(entry_logs.c.log_id)
        )
        async with self.engine.begin() as conn:
            return set((await conn.execute(stmt)).scalars().all())

    async def list_entry_logs(
        self, *, event_id: str | None = None, scan_id: str | None = None, limit: int = 100
    ) -> list[EntryLogRecord]:
        query = (
            sa.select(entry_logs)
            .order_by(
                entry_logs.c.scanned_at_ms.desc(),
                entry_logs.c.created_at_ms.desc(),
                entry_logs.c.log_id,
            )
            .limit(limit)
        )
        if event_id:
            query = query.where(entry_logs.c.event_id == event_id)
        if scan_id:
            query = query.where(entry_logs.c.scan_id == scan_id)
        async with autocommit(self.engine).connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [EntryLogRecord.from_row(r) for r in rows]
