"""SQL for venues, events and gates."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
from central.direct_sql import DirectPool, HotStatement
from central.errors import ApiError
from central.events.schema import events, gates, venues
from central.timeutil import as_utc, iso, utcnow

log = logging.getLogger(__name__)

DEVICE_TOKEN_PREFIX = "trg_"
# A gate authenticates on every scan; its last-seen time is written at most this often.
GATE_SEEN_EVERY = timedelta(seconds=15)


def token_hash(device_token: str) -> str:
    return hashlib.sha256(device_token.encode()).hexdigest()


@dataclass(frozen=True)
class NewEvent:
    event_id: str
    name: str
    venue_name: str
    venue_address: str | None
    hall_id: str
    event_date: datetime
    doors_open: datetime
    doors_close: datetime
    pricing: dict[str, int]
    category_rows: dict[str, list[str]]
    total_seats: int


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    page: int
    per_page: int
    total: int

    def pagination(self) -> dict[str, int]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "total_pages": math.ceil(self.total / self.per_page),
        }


# target status -> the statuses it may be reached from
EVENT_STATUS_SOURCES: dict[str, tuple[str, ...]] = {
    "CANCELLING": ("SCHEDULED",),
    "CANCELLED": ("SCHEDULED", "CANCELLING"),
}


def event_view(row: sa.RowMapping) -> dict[str, Any]:
    return {
        "event_id": row["event_id"],
        "name": row["name"],
        "venue": {
            "venue_id": row["venue_id"],
            "name": row["venue_name"],
            "address": row["venue_address"],
        },
        "hall_id": row["hall_id"],
        "event_date": iso(row["event_date"]),
        "doors_open": iso(row["doors_open"]),
        "doors_close": iso(row["doors_close"]),
        "pricing": dict(row["pricing"]),
        "category_rows": dict(row["category_rows"] or {}),
        "total_seats": int(row["total_seats"]),
        "created_at": iso(row["created_at"]),
        "status": row["status"],
        "cancel_reason": row["cancel_reason"],
    }


def gate_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "gate_id": row["gate_id"],
        "hall_id": row["hall_id"],
        "name": row["name"],
        "enabled": bool(row["enabled"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "last_seen_at": iso(row["last_seen_at"]),
    }


_EVENT_WITH_VENUE = sa.select(
    events,
    venues.c.name.label("venue_name"),
    venues.c.address.label("venue_address"),
).join(venues, venues.c.venue_id == events.c.venue_id)


def _same_event(row: sa.RowMapping, new: NewEvent) -> str | None:
    """The first field in which a stored event differs from a repeated create, or None."""
    checks: list[tuple[str, Any, Any]] = [
        ("name", row["name"], new.name),
        ("venue.name", row["venue_name"], new.venue_name),
        ("hall_id", row["hall_id"], new.hall_id),
        ("event_date", as_utc(row["event_date"]), new.event_date),
        ("doors_open", as_utc(row["doors_open"]), new.doors_open),
        ("doors_close", as_utc(row["doors_close"]), new.doors_close),
        ("pricing", dict(row["pricing"]), new.pricing),
        ("category_rows", dict(row["category_rows"] or {}), new.category_rows),
        ("total_seats", row["total_seats"], new.total_seats),
    ]
    return next((name for name, stored, given in checks if stored != given), None)


# A gate's authentication (every scan whose gate is not in the orchestrator's cache), built once
GATE_BY_TOKEN = HotStatement(sa.select(gates).where(gates.c.token_sha256 == sa.bindparam("p_sha")))
GATE_SEEN = HotStatement(
    gates.update()
    .where(
        gates.c.gate_id == sa.bindparam("p_gate_id"),
        sa.or_(gates.c.last_seen_at.is_(None), gates.c.last_seen_at < sa.bindparam("p_stale")),
    )
    .values(last_seen_at=sa.bindparam("p_now"))
)


class EventStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.direct = DirectPool.of(engine)

    # ----- venues and events -----

    async def _venue_id(self, conn: AsyncConnection, name: str, address: str | None) -> str:
        """Find the venue by name or create it; concurrent creators agree on one row."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(
            dialect.insert(venues)
            .values(venue_id=str(uuid.uuid4()), name=name, address=address, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        venue_id = await conn.scalar(sa.select(venues.c.venue_id).where(venues.c.name == name))
        assert venue_id is not None
        return str(venue_id)

    async def create_event(self, new: NewEvent) -> tuple[dict[str, Any], bool]:
        """Store an event (and its venue when new); the same event_id again answers the stored one."""
        try:
            async with self.engine.begin() as conn:
                venue_id = await self._venue_id(conn, new.venue_name, new.venue_address)
                await conn.execute(
                    events.insert().values(
                        event_id=new.event_id,
                        name=new.name,
                        venue_id=venue_id,
                        hall_id=new.hall_id,
                        event_date=new.event_date,
                        doors_open=new.doors_open,
                        doors_close=new.doors_close,
                        pricing=new.pricing,
                        category_rows=new.category_rows,
                        total_seats=new.total_seats,
                        created_at=utcnow(),
                    )
                )
                row = await _event_row(conn, new.event_id)
            assert row is not None
            log.info("event %s created in hall %s", new.event_id, new.hall_id)
            return event_view(row), True
        except sa.exc.IntegrityError:
            pass
        async with autocommit(self.engine).connect() as conn:
            row = await _event_row(conn, new.event_id)
        if row is None:
            raise ApiError("VALIDATION_ERROR", "event rejected by the database")
        differing = _same_event(row, new)
        if differing is not None:
            raise ApiError(
                "IDEMPOTENCY_CONFLICT",
                "event_id already used with other values",
                {"field": differing, "event_id": new.event_id},
            )
        return event_view(row), False

    async def delete_event(self, event_id: str) -> bool:
        """Undo a creation whose seats could not be made (the orchestrator's compensation), so
        no event is listed without its seats. Answers whether a row went."""
        async with self.engine.begin() as conn:
            venue_id = await conn.scalar(
                sa.select(events.c.venue_id).where(events.c.event_id == event_id)
            )
            done = await conn.execute(events.delete().where(events.c.event_id == event_id))
            if venue_id is not None:
                # A venue made for this event alone goes with it; one other events use stays.
                in_use = sa.select(events.c.event_id).where(events.c.venue_id == venue_id).exists()
                await conn.execute(venues.delete().where(venues.c.venue_id == venue_id, ~in_use))
        if done.rowcount:
            log.info("event %s deleted (its creation was rolled back)", event_id)
        return bool(done.rowcount)

    async def get_event(self, event_id: str) -> dict[str, Any]:
        async with autocommit(self.engine).connect() as conn:
            row = await _event_row(conn, event_id)
        if row is None:
            raise ApiError("EVENT_NOT_FOUND", "no such event", {"event_id": event_id})
        return event_view(row)

    async def list_events(self, *, page: int, per_page: int, hall_id: str | None) -> Page:
        query = _EVENT_WITH_VENUE
        count = sa.select(sa.func.count()).select_from(events)
        if hall_id is not None:
            query = query.where(events.c.hall_id == hall_id)
            count = count.where(events.c.hall_id == hall_id)
        query = (
            query.order_by(events.c.event_date, events.c.event_id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        async with autocommit(self.engine).connect() as conn:
            total = int(await conn.scalar(count) or 0)
            rows = (await conn.execute(query)).mappings().all()
        return Page([event_view(r) for r in rows], page, per_page, total)

    async def set_status(self, event_id: str, to: str, reason: str | None) -> dict[str, Any]:
        """SCHEDULED -> CANCELLING -> CANCELLED, one conditional UPDATE; a repeat of a move
        already made answers the event unchanged; a step back is EVENT_INVALID_STATE."""
        sources = EVENT_STATUS_SOURCES[to]
        values: dict[str, Any] = {"status": to}
        if reason is not None:
            values["cancel_reason"] = reason
        async with self.engine.begin() as conn:
            await conn.execute(
                events.update()
                .where(events.c.event_id == event_id, events.c.status.in_(sources))
                .values(**values)
            )
            row = await _event_row(conn, event_id)
        if row is None:
            raise ApiError("EVENT_NOT_FOUND", "no such event", {"event_id": event_id})
        if row["status"] != to:
            raise ApiError(
                "EVENT_INVALID_STATE",
                f"event is {row['status']}, cannot become {to}",
                {"status": row["status"], "event_id": event_id},
            )
        log.info("event %s -> %s", event_id, to)
        return event_view(row)

    # ----- gates -----

    async def create_gate(self, hall_id: str, name: str) -> dict[str, Any]:
        """Register a gate; its device token is answered here once and never stored."""
        # The prefix names the secret when it turns up in a log or a paste, and keeps the token
        # from starting with "-", which command lines would read as an option.
        device_token = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        gate_id = str(uuid.uuid4())
        async with self.engine.begin() as conn:
            await conn.execute(
                gates.insert().values(
                    gate_id=gate_id,
                    hall_id=hall_id,
                    name=name,
                    token_sha256=token_hash(device_token),
                    enabled=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            row = await _gate_row(conn, gate_id)
        assert row is not None
        log.info("gate %s added to hall %s", gate_id, hall_id)
        return {**gate_view(row), "device_token": device_token}

    async def authenticate_gate(self, device_token: str) -> dict[str, Any]:
        """The gate holding this token, read fresh on every call so a revocation takes effect at
        once: an unknown token is UNAUTHORIZED, a revoked (disabled) gate's token GATE_REVOKED, so
        the gate can tell "you were switched off" from "central is confused"."""
        now = utcnow()
        found = await self.direct.fetchrow(GATE_BY_TOKEN, {"p_sha": token_hash(device_token)})
        row: dict[Any, Any] | None = dict(found) if found is not None else None
        if row is not None and row["enabled"]:
            seen = row["last_seen_at"]
            if seen is None or as_utc(seen) < now - GATE_SEEN_EVERY:
                # one conditional statement: of several replicas seeing the gate at once, the
                # ones that lose the race write nothing
                await self.direct.execute(
                    GATE_SEEN,
                    {"p_gate_id": row["gate_id"], "p_now": now, "p_stale": now - GATE_SEEN_EVERY},
                )
                row = {**row, "last_seen_at": now}
        if row is None:
            raise ApiError("UNAUTHORIZED", "unknown gate device token")
        if not row["enabled"]:
            raise ApiError(
                "GATE_REVOKED",
                "this gate was revoked by the operator",
                {"gate_id": row["gate_id"]},
            )
        return gate_view(row)

    async def get_gate(self, gate_id: str) -> dict[str, Any]:
        async with autocommit(self.engine).connect() as conn:
            row = await _gate_row(conn, gate_id)
        if row is None:
            raise ApiError("GATE_NOT_FOUND", "no such gate", {"gate_id": gate_id})
        return gate_view(row)

    async def list_gates(self, hall_id: str | None) -> list[dict[str, Any]]:
        query = sa.select(gates).order_by(gates.c.hall_id, gates.c.name, gates.c.gate_id)
        if hall_id is not None:
            query = query.where(gates.c.hall_id == hall_id)
        async with autocommit(self.engine).connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [gate_view(r) for r in rows]

    async def set_gate_enabled(self, gate_id: str, enabled: bool) -> dict[str, Any]:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                gates.update()
                .where(gates.c.gate_id == gate_id)
                .values(enabled=enabled, updated_at=utcnow())
            )
            row = await _gate_row(conn, gate_id)
        if result.rowcount == 0 or row is None:
            raise ApiError("GATE_NOT_FOUND", "no such gate", {"gate_id": gate_id})
        log.info("gate %s %s", gate_id, "enabled" if enabled else "disabled")
        return gate_view(row)


async def _event_row(conn: AsyncConnection, event_id: str) -> sa.RowMapping | None:
    result = await conn.execute(_EVENT_WITH_VENUE.where(events.c.event_id == event_id))
    return result.mappings().first()


async def _gate_row(conn: AsyncConnection, gate_id: str) -> sa.RowMapping | None:
    result = await conn.execute(sa.select(gates).where(gates.c.gate_id == gate_id))
    return result.mappings().first()
