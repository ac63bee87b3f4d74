"""Request limits per subject (a user id) kept in the orchestrator's database, so every replica
counts into the same window. One upsert both counts the request and answers the count it made:
the decision can never be taken on a number another request is about to change."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import Step, create_tables
from central.direct_sql import DirectPool, HotStatement
from central.errors import ApiError

metadata = sa.MetaData()

rate_windows = sa.Table(
    "rate_windows",
    metadata,
    sa.Column("bucket", sa.String(32), primary_key=True),
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("window_started_ms", sa.BigInteger, nullable=False),
    sa.Column("hits", sa.Integer, nullable=False),
)

STEPS = [Step(104, "per-user request windows", create_tables(metadata, "rate_windows"))]


def _now_ms() -> int:
    return int(time.time() * 1000)


@functools.cache
def _count(dialect: str) -> HotStatement:
    """One upsert that counts a request and answers the window's count: a window started at or
    before p_stale_before starts again at p_now."""
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = sa.bindparam("p_now", type_=sa.BigInteger)
    stale = rate_windows.c.window_started_ms <= sa.bindparam("p_stale_before", type_=sa.BigInteger)
    return HotStatement(
        insert(rate_windows)
        .values(
            bucket=sa.bindparam("p_bucket", type_=sa.String),
            subject=sa.bindparam("p_subject", type_=sa.String),
            window_started_ms=now,
            hits=1,
        )
        .on_conflict_do_update(
            index_elements=[rate_windows.c.bucket, rate_windows.c.subject],
            set_={
                "hits": sa.case((stale, 1), else_=rate_windows.c.hits + 1),
                "window_started_ms": sa.case((stale, now), else_=rate_windows.c.window_started_ms),
            },
        )
        .returning(rate_windows.c.hits, rate_windows.c.window_started_ms)
    )


class RateLimits:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], int] = _now_ms) -> None:
        self.engine = engine
        self.clock = clock
        # on every reserve, login and OTP: built once, run on the driver (central/direct_sql.py)
        self._count = _count(engine.dialect.name)
        self._direct = DirectPool.of(engine)

    async def hit(self, bucket: str, subject: str, *, limit: int, window_s: int) -> None:
        """Count one request of subject in bucket; RATE_LIMITED (with retry_after_s) past limit
        requests in a fixed window of window_s seconds."""
        now = self.clock()
        row = await self._direct.fetchrow(
            self._count,
            {
                "p_bucket": bucket,
                "p_subject": subject,
                "p_now": now,
                "p_stale_before": now - window_s * 1000,
            },
        )
        assert row is not None  # an upsert always answers its row
        hits, started = row["hits"], row["window_started_ms"]
        if hits <= limit:
            return
        retry_after = max(1, math.ceil((started + window_s * 1000 - now) / 1000))
        raise ApiError(
            "RATE_LIMITED",
            f"at most {limit} of these requests per {window_s} s; try again in {retry_after} s",
            {"retry_after_s": retry_after},
        )
