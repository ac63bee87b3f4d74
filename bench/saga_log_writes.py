"""Saga-log statements per purchase: one reserve and one pay through the public API of an
in-process cluster, every statement on the orchestrator's database that reads or writes `sagas` /
`saga_steps` counted, each one round trip: those through the engine by a SQLAlchemy event
listener, and those on the driver (central/direct_sql.py, the saga runner's own) where the
runner's DirectPool sends them. Writes are also counted apart, with the bytes of their parameters.

    .venv/bin/python bench/saga_log_writes.py              # embedded default (SQLite)
    .venv/bin/python bench/saga_log_writes.py --postgres postgresql+asyncpg://postgres@127.0.0.1/x
    .venv/bin/python bench/saga_log_writes.py --flagged    # a buyer who confirms with a code

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the in-process cluster the tests use

from cluster import running_cluster  # noqa: E402
from purchase_support import make_event, pay, reserve  # noqa: E402
from sqlalchemy import event  # noqa: E402

from central.direct_sql import DirectPool  # noqa: E402

# Every write a statement makes to the saga log: a WITH statement may make two.
WRITES = re.compile(r"\b(INSERT INTO|UPDATE|DELETE FROM)\s+(sagas|saga_steps)\b", re.IGNORECASE)
READS = re.compile(r"\b(?:FROM|JOIN)\s+(sagas|saga_steps)\b", re.IGNORECASE)


class Tally:
    """Statements of one reserve + pay, by what they do to the saga log."""

    def __init__(self) -> None:
        self.on = False
        self.statements: Counter[str] = Counter()
        self.writes = 0
        self.write_bytes = 0

    def saw(self, sql: str, params: Any) -> None:
        if not self.on:
            return
        writes = [f"{v.split()[0].upper()} {t.lower()}" for v, t in WRITES.findall(sql)]
        reads = sorted({t.lower() for t in READS.findall(sql)})
        if not writes and not reads:
            return
        # one statement (one round trip) by what it writes, else by what it reads
        name = " + ".join(writes) or "SELECT " + " + ".join(reads)
        self.statements[name] += 1
        if writes:
            self.writes += 1
            self.write_bytes += len(repr(params))


def listen(engine: Any, tally: Tally) -> None:
    """Count what the saga runner sends: through the engine, and on its DirectPool."""

    def on_engine(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        tally.saw(statement, params)

    event.listen(engine.sync_engine, "before_cursor_execute", on_engine)
    direct = DirectPool.of(engine)
    for name in ("fetch", "execute"):
        sends = getattr(direct, name)

        async def counted(hot: Any, params: Any, _sends: Any = sends) -> Any:
            tally.saw(str(hot.statement), params)
            return await _sends(hot, params)

        setattr(direct, name, counted)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL prefix (default: SQLite)")
    parser.add_argument("--flagged", action="store_true", help="the buyer needs a one-time code")
    # the docs test runs every bench with --quick; one purchase already takes seconds
    parser.add_argument("--quick", action="store_true", help="the same run (it is already short)")
    args = parser.parse_args()
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        async with running_cluster(Path(tmp), database_url=args.postgres) as c:
            seat_id = (await make_event(c))["seat_ids"][0]
            buyer = await c.make_user(credits=500, flagged=args.flagged)
            listen(c.runtime().engine, tally)
            tally.on = True
            status, body = await reserve(c, buyer["token"], seat_id)
            assert status == 200, body
            order_id = body["data"]["order_id"]
            status, body = await pay(c, buyer["token"], order_id)
            if args.flagged:
                assert status == 428, body
                code = c.otp_codes(user_id=buyer["user_id"], purpose="purchase")[-1]
                verify = {"context": "purchase", "reference_id": order_id, "otp_code": code}
                status, body = await c.call(
                    "POST", "/api/verify-otp", json_body=verify, token=buyer["token"]
                )
                assert status == 200, body
                status, body = await pay(c, buyer["token"], order_id)
            assert status == 200, body
            tally.on = False
    print(
        json.dumps(
            {
                "database": "postgresql" if args.postgres else "sqlite",
                "flagged": args.flagged,
                "saga_log_statements": sum(tally.statements.values()),
                "saga_log_writes": tally.writes,
                "by_statement": dict(tally.statements),
                "write_parameter_bytes": tally.write_bytes,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
