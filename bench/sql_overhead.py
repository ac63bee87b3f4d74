"""What one statement costs this process's CPU, three ways, in one run: the same one-row SELECT by
primary key (a) built anew and run through SQLAlchemy's AsyncEngine in autocommit, as the scan path
did, (b) built once and run the same way, (c) built once and run by central.direct_sql (the
asyncpg pool on PostgreSQL, one sqlite3 connection on the event loop on SQLite), which the scan
path now uses. 50 statements in flight at a time; CPU is
`time.process_time()` of this process (not PostgreSQL's).

    .venv/bin/python bench/sql_overhead.py --postgres postgresql+asyncpg://postgres@127.0.0.1/sqlo
    .venv/bin/python bench/sql_overhead.py --quick     # SQLite, a few hundred statements

Prints one JSON line: microseconds of CPU per statement for each way, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from central.db import autocommit, drop_postgres_database, make_engine  # noqa: E402
from central.direct_sql import DirectPool, HotStatement  # noqa: E402
from central.progress import Progress  # noqa: E402

progress = Progress("sql_overhead")
metadata = sa.MetaData()
things = sa.Table(
    "bench_things",
    metadata,
    sa.Column("thing_id", sa.String(36), primary_key=True),
    sa.Column("owner", sa.String(36), nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
)
BY_ID = HotStatement(
    sa.select(things.c.answer).where(
        things.c.thing_id == sa.bindparam("p_id"), things.c.owner == sa.bindparam("p_owner")
    )
)
ROWS = 1000
IN_FLIGHT = 50


async def cpu_per_statement(one: Callable[[int], Awaitable[object]], n: int) -> float:
    """Microseconds of this process's CPU per statement, n statements, IN_FLIGHT at a time."""
    started = time.process_time()
    for base in range(0, n, IN_FLIGHT):
        await asyncio.gather(*(one(base + j) for j in range(IN_FLIGHT)))
    return (time.process_time() - started) / n * 1e6


async def run(url: str, n: int, rounds: int) -> dict[str, object]:
    engine = await make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                things.insert(),
                [{"thing_id": str(i), "owner": "o", "answer": "x" * 200} for i in range(ROWS)],
            )
        plain = autocommit(engine)
        direct = DirectPool.of(engine)

        async def built_each_time(i: int) -> object:
            query = sa.select(things.c.answer).where(
                things.c.thing_id == str(i % ROWS), things.c.owner == "o"
            )
            async with plain.connect() as conn:
                return await conn.scalar(query)

        async def built_once(i: int) -> object:
            async with plain.connect() as conn:
                return await conn.scalar(BY_ID.statement, {"p_id": str(i % ROWS), "p_owner": "o"})

        async def driver_pool(i: int) -> object:
            return await direct.fetchrow(BY_ID, {"p_id": str(i % ROWS), "p_owner": "o"})

        ways = {
            "engine_built_each_time": built_each_time,
            "engine_built_once": built_once,
            "direct_sql": driver_pool,
        }
        best: dict[str, float] = {}
        for r in range(rounds):  # interleaved rounds, the best of each: least disturbed
            for name, one in ways.items():
                progress.step(f"round {r + 1} of {rounds}: {name}, {n} statements")
                took = await cpu_per_statement(one, n)
                best[name] = min(best.get(name, took), took)
        await DirectPool.close_for(engine)
        return {
            "bench": "sql_overhead",
            "store": "PostgreSQL" if engine.dialect.name == "postgresql" else "SQLite",
            "statements_per_way": n,
            "cpu_us_per_statement": {k: round(v) for k, v in best.items()},
            "ratio_built_each_time_to_direct": round(
                best["engine_built_each_time"] / best["direct_sql"], 2
            ),
            "ratio_built_once_to_direct": round(best["engine_built_once"] / best["direct_sql"], 2),
        }
    finally:
        await engine.dispose()


# what --quick sets; tests/docs/quick_runs.py reads it: documented commands that differ only in
# these flags are the same run under --quick, so the docs test runs them once
QUICK = {"statements": 200, "rounds": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (a database made and dropped)")
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few hundred statements")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        try:
            result = asyncio.run(run(url, args.statements, args.rounds))
        finally:
            if args.postgres:
                asyncio.run(drop_postgres_database(args.postgres))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
