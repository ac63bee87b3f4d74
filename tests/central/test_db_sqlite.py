"""Two processes on one SQLite file (the admin CLI beside `serve`): a read-then-write transaction
waits for the other writer instead of failing with SQLITE_BUSY."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from central.db import autocommit, make_engine


async def test_a_read_then_write_transaction_waits_for_another_writer(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = await make_engine(url), await make_engine(url)  # as two processes would
    try:
        async with first.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
        holding = asyncio.Event()

        async def long_writer() -> None:
            async with first.begin() as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
                holding.set()
                await asyncio.sleep(0.5)

        writer = asyncio.create_task(long_writer())
        await holding.wait()
        async with second.begin() as conn:  # waits for the lock, then sees the committed row
            count = await conn.scalar(sa.text("SELECT COUNT(*) FROM t"))
            await conn.execute(sa.text("INSERT INTO t VALUES (:n)"), {"n": count + 1})
        await writer
        async with autocommit(second).connect() as conn:
            rows = (await conn.execute(sa.text("SELECT n FROM t ORDER BY n"))).scalars().all()
        assert list(rows) == [1, 2]
    finally:
        await first.dispose()
        await second.dispose()
