"""SQL for orders and transfers. Every state change is one conditional UPDATE whose row count
decides the outcome; the row is read afterwards only to answer or to explain a refusal."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import autocommit
from central.direct_sql import DirectPool, HotStatement, Row
from central.errors import ApiError
from central.orders.schema import orders, transfers
from central.orders.statements import (
    CREATE_ORDER,
    CREATE_TRANSFER,
    LIVE_TRANSFER_OF_SEAT,
    ORDER_INSERTED,
    ORDER_ROW,
    TRANSFER_INSERTED,
    TRANSFER_ROW,
    confirm,
    move,
    row_of,
)
from central.orders.states import (
    OrderStatus,
    TransferStatus,
    order_sources,
    transfer_sources,
)
from central.timeutil import iso, utcnow

log = logging.getLogger(__name__)

ORDER_FIELDS = ("user_id", "seat_id", "event_id", "credits_charged", "hold_id")
TRANSFER_FIELDS = ("seat_id", "seller_user_id", "buyer_user_id", "credits_amount", "initiated_by")


def order_view(row: Row) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "user_id": row["user_id"],
        "seat_id": row["seat_id"],
        "event_id": row["event_id"],
        "status": row["status"],
        "credits_charged": int(row["credits_charged"]),
        "hold_id": row["hold_id"],
        "reason": row["reason"],
        "created_at": iso(row["created_at"]),
        "confirmed_at": iso(row["confirmed_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def transfer_view(row: Row) -> dict[str, Any]:
    return {
        "transfer_id": row["transfer_id"],
        "seat_id": row["seat_id"],
        "seller_user_id": row["seller_user_id"],
        "buyer_user_id": row["buyer_user_id"],
        "credits_amount": int(row["credits_amount"]),
        "initiated_by": row["initiated_by"],
        "status": row["status"],
        "seller_confirmed": bool(row["seller_confirmed"]),
        "buyer_confirmed": bool(row["buyer_confirmed"]),
        "dispute_reason": row["dispute_reason"],
        "reason": row["reason"],
        "created_at": iso(row["created_at"]),
        "completed_at": iso(row["completed_at"]),
        "updated_at": iso(row["updated_at"]),
    }


@dataclass(frozen=True)
class Created:
    """A create's answer: the stored record and whether this call inserted it."""

    record: dict[str, Any]
    created: bool


@functools.cache
def _order_queries(names: tuple[str, ...]) -> tuple[HotStatement, HotStatement]:
    """(page, count) of the orders matching equality filters on these columns, built once per
    set of filtered columns (the few the API allows) and run without SQLAlchemy's execution
    layer on PostgreSQL (central/direct_sql.py)."""
    where = [orders.c[name] == sa.bindparam(f"p_{name}") for name in names]
    page = (
        sa.select(orders)
        .where(*where)
        .order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
        .limit(sa.bindparam("p_limit", type_=sa.Integer))
        .offset(sa.bindparam("p_offset", type_=sa.Integer))
    )
    count = sa.select(sa.func.count().label("n")).select_from(orders).where(*where)
    return HotStatement(page), HotStatement(count)


class OrderStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.direct = DirectPool.of(engine)

    # ----- orders -----

    async def create_order(self, fields: dict[str, Any]) -> Created:
        """Insert a PENDING order under the caller's id; a repeat returns the stored one."""
        now = utcnow()
        params = {f"p_{name}": fields.get(name) for name in ORDER_INSERTED}
        params.update(p_created_at=now, p_updated_at=now)
        try:
            row = await self.direct.fetchrow(CREATE_ORDER, params)
            assert row is not None
            log.info("order %s created", fields["order_id"])
            return Created(order_view(row), True)
        except sa.exc.IntegrityError:
            pass
        # The id exists already: a retry of the same create, or a different order reusing the id.
        row = await self._order_row(fields["order_id"])
        if row is None:  # the insert failed for another reason than the primary key
            raise ApiError("VALIDATION_ERROR", "order rejected by the database")
        _check_same(row, fields, ORDER_FIELDS, "order_id")
        return Created(order_view(row), False)

    async def get_order(self, order_id: str) -> dict[str, Any]:
        row = await self._order_row(order_id)
        if row is None:
            raise ApiError("ORDER_NOT_FOUND", "no such order", {"order_id": order_id})
        return order_view(row)

    async def _order_row(self, order_id: str) -> Row | None:
        return await self.direct.fetchrow(ORDER_ROW, {"p_order_id": order_id})

    async def list_orders(
        self, filters: dict[str, str], limit: int, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the matching orders, newest first, and how many match in all."""
        params: dict[str, Any] = {f"p_{name}": value for name, value in filters.items()}
        params.update(p_limit=limit, p_offset=offset)
        page, count = _order_queries(tuple(sorted(filters)))
        rows = await self.direct.fetch(page, params)
        if len(rows) < limit and (rows or offset == 0):
            # a page that is not full is the end: the total is known without counting (the
            # verification's "is this seat paid?" asks with one statement, not two)
            total = offset + len(rows)
        else:
            found = await self.direct.fetchrow(count, params)
            total = int(found["n"] if found is not None else 0)
        return [order_view(r) for r in rows], total

    async def transition_order(
        self, order_id: str, to: OrderStatus, *, compensation: bool, reason: str | None
    ) -> dict[str, Any]:
        sources = order_sources(to, compensation=compensation)
        now = utcnow()
        values: dict[str, Any] = {"status": to.value, "updated_at": now}
        if to is OrderStatus.CONFIRMED:
            values["confirmed_at"] = now
        if reason is not None:
            values["reason"] = reason
        row = await _transition(
            self.direct, orders, "order_id", order_id, [x.value for x in sources], values, "order"
        )
        return order_view(row)

    async def stats(self, event_id: str) -> dict[str, Any]:
        query = (
            sa.select(
                orders.c.status,
                sa.func.count().label("n"),
                sa.func.coalesce(sa.func.sum(orders.c.credits_charged), 0).label("credits"),
            )
            .where(orders.c.event_id == event_id)
            .group_by(orders.c.status)
        )
        async with autocommit(self.engine).connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        by_status = {s.value: 0 for s in OrderStatus}
        revenue = 0
        for r in rows:
            by_status[r["status"]] = int(r["n"])
            if r["status"] == OrderStatus.CONFIRMED.value:
                revenue = int(r["credits"])
        return {"event_id": event_id, "orders_by_status": by_status, "revenue": revenue}

    async def stats_by_event(self, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Confirmed orders and revenue of many events in one statement (the console's list)."""
        query = (
            sa.select(
                orders.c.event_id,
                orders.c.status,
                sa.func.count().label("n"),
                sa.func.coalesce(sa.func.sum(orders.c.credits_charged), 0).label("credits"),
            )
            .where(orders.c.event_id.in_(event_ids))
            .group_by(orders.c.event_id, orders.c.status)
        )
        async with autocommit(self.engine).connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        out: dict[str, dict[str, Any]] = {
            e: {"orders_by_status": {s.value: 0 for s in OrderStatus}, "revenue": 0}
            for e in event_ids
        }
        for r in rows:
            item = out[r["event_id"]]
            item["orders_by_status"][r["status"]] = int(r["n"])
            if r["status"] == OrderStatus.CONFIRMED.value:
                item["revenue"] = int(r["credits"])
        return out

    # ----- transfers -----

    async def create_transfer(self, fields: dict[str, Any]) -> Created:
        """Insert an INITIATED transfer; the partial unique index refuses a second live one."""
        now = utcnow()
        params = {f"p_{name}": fields.get(name) for name in TRANSFER_INSERTED}
        params.update(p_created_at=now, p_updated_at=now)
        try:
            row = await self.direct.fetchrow(CREATE_TRANSFER, params)
            assert row is not None
            log.info("transfer %s initiated", fields["transfer_id"])
            return Created(transfer_view(row), True)
        except sa.exc.IntegrityError:
            pass
        row = await self._transfer_row(fields["transfer_id"])
        if row is not None:
            _check_same(row, fields, TRANSFER_FIELDS, "transfer_id")
            return Created(transfer_view(row), False)
        live = await self.direct.fetchrow(LIVE_TRANSFER_OF_SEAT, {"p_seat_id": fields["seat_id"]})
        if live is not None and live["status"] == TransferStatus.DISPUTED.value:
            raise ApiError(
                "SEAT_DISPUTED",
                "this seat is under dispute and cannot be transferred until it is decided",
                {"seat_id": fields["seat_id"], "transfer_id": live["transfer_id"]},
            )
        active = live["transfer_id"] if live is not None else None
        if active is None:  # the live transfer finished meanwhile; the caller may simply retry
            raise ApiError(
                "TRANSFER_IN_PROGRESS",
                "another transfer of this seat was in progress; retry",
                {"seat_id": fields["seat_id"]},
            )
        raise ApiError(
            "TRANSFER_IN_PROGRESS",
            "this seat already has a transfer in progress",
            {"seat_id": fields["seat_id"], "transfer_id": active},
        )

    async def get_transfer(self, transfer_id: str) -> dict[str, Any]:
        row = await self._transfer_row(transfer_id)
        if row is None:
            raise ApiError("TRANSFER_NOT_FOUND", "no such transfer", {"transfer_id": transfer_id})
        return transfer_view(row)

    async def _transfer_row(self, transfer_id: str) -> Row | None:
        return await self.direct.fetchrow(TRANSFER_ROW, {"p_transfer_id": transfer_id})

    async def list_transfers(
        self,
        *,
        seat_id: str | None,
        user_id: str | None,
        status: str | None,
        limit: int,
        role: str | None = None,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the matching transfers, newest first, and how many match in all. With a
        user, `role` picks the side (seller or buyer); without it either side matches."""
        where: list[Any] = []
        if seat_id is not None:
            where.append(transfers.c.seat_id == seat_id)
        if user_id is not None:
            if role == "seller":
                where.append(transfers.c.seller_user_id == user_id)
            elif role == "buyer":
                where.append(transfers.c.buyer_user_id == user_id)
            else:
                where.append(
                    sa.or_(
                        transfers.c.seller_user_id == user_id, transfers.c.buyer_user_id == user_id
                    )
                )
        if status is not None:
            where.append(transfers.c.status == status)
        query = (
            sa.select(transfers)
            .where(*where)
            .order_by(transfers.c.created_at.desc(), transfers.c.transfer_id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(transfers).where(*where)
        async with autocommit(self.engine).connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            total = int(await conn.scalar(count) or 0)
        return [transfer_view(r) for r in rows], total

    async def transition_transfer(
        self, transfer_id: str, to: TransferStatus, *, reason: str | None
    ) -> dict[str, Any]:
        sources = transfer_sources(to)
        now = utcnow()
        values: dict[str, Any] = {"status": to.value, "updated_at": now}
        if to is TransferStatus.COMPLETED:
            values["completed_at"] = now
        if to is TransferStatus.DISPUTED:
            values["dispute_reason"] = reason
        if reason is not None:
            values["reason"] = reason
        row = await _transition(
            self.direct,
            transfers,
            "transfer_id",
            transfer_id,
            [x.value for x in sources],
            values,
            "transfer",
        )
        return transfer_view(row)

    async def confirm_party(self, transfer_id: str, party: str) -> dict[str, Any]:
        """Record that one side verified its OTP; only a transfer awaiting OTPs takes it."""
        flag = "seller_confirmed" if party == "seller" else "buyer_confirmed"
        params = {"p_transfer_id": transfer_id, "p_updated_at": utcnow()}
        row = await self.direct.fetchrow(confirm(flag), params)
        if row is not None:
            return transfer_view(row)
        row = await self._transfer_row(transfer_id)
        if row is None:
            raise ApiError("TRANSFER_NOT_FOUND", "no such transfer", {"transfer_id": transfer_id})
        if row[flag]:  # set by an earlier try of this same call
            return transfer_view(row)
        raise ApiError(
            "TRANSFER_INVALID_STATE",
            f"transfer is {row['status']}, parties confirm only while PENDING_OTP",
            {"status": row["status"], "transfer_id": transfer_id},
        )


async def _transition(
    direct: DirectPool,
    table: sa.Table,
    key: str,
    entity_id: str,
    sources: list[str],
    values: dict[str, Any],
    noun: str,
) -> Row:
    """Move one order or transfer to `values["status"]` with one conditional UPDATE from the
    allowed `sources`. A repeat of a transition already made answers the row unchanged (a
    retried saga step); anything else is <NOUN>_INVALID_STATE, and nothing is written."""
    to = values["status"]
    if sources:
        row = await _move(direct, table, key, entity_id, sources, values)
        if row is not None:
            log.info("%s %s -> %s", noun, entity_id, to)
            return row
    # Not moved: the row as it is now explains why (each statement is atomic on its own, so
    # reading it apart from the UPDATE sees what a read inside its transaction would have).
    row = await direct.fetchrow(row_of(table, key), {f"p_{key}": entity_id})
    upper = noun.upper()
    if row is None:
        raise ApiError(f"{upper}_NOT_FOUND", f"no such {noun}", {key: entity_id})
    if row["status"] == to:  # a retried transition: already done, nothing to change
        return row
    raise ApiError(
        f"{upper}_INVALID_STATE",
        f"{noun} is {row['status']}, cannot become {to}",
        {"status": row["status"], "to": to, key: entity_id},
    )


async def _move(
    direct: DirectPool,
    table: sa.Table,
    key: str,
    entity_id: str,
    sources: list[str],
    values: dict[str, Any],
) -> Row | None:
    """The conditional UPDATE; the changed row, or None when the row was in no allowed state."""
    columns = tuple(sorted(name for name in values if name != "status"))
    hot = move(table, key, values["status"], tuple(sources), columns)
    params = {f"p_{name}": values[name] for name in columns}
    params[f"p_{key}"] = entity_id
    try:
        return await direct.fetchrow(hot, params)
    except sa.exc.IntegrityError:
        # Only the one-live-transfer index can refuse a status change: a dispute while another
        # transfer of the seat is under way.
        raise ApiError(
            "TRANSFER_IN_PROGRESS",
            "another transfer of this seat is in progress; try again when it has ended",
            {key: entity_id},
        ) from None


def _check_same(row: Row, fields: dict[str, Any], names: tuple[str, ...], key: str) -> None:
    differing = [n for n in names if row[n] != fields.get(n)]
    if differing:
        raise ApiError(
            "IDEMPOTENCY_CONFLICT",
            f"{key} already used with other values",
            {"field": differing[0], key: fields[key]},
        )
