"""Saga-log statements per purchase: one reserve and one pay through the public API of an
in-process cluster, every statement on the orchestrator's database counted by a SQLAlchemy event
listener (writes to `sagas` / `saga_steps`, and the bytes of their parameters).

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

# Every write a statement makes to the saga log: a WITH statement may make two.
TARGET = re.compile(r"\b(INSERT INTO|UPDATE|DELETE FROM)\s+(sagas|saga_steps)\b", re.IGNORECASE)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL prefix (default: SQLite)")
    parser.add_argument("--flagged", action="store_true", help="the buyer needs a one-time code")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with running_cluster(Path(tmp), database_url=args.postgres) as c:
            seat_id = (await make_event(c))["seat_ids"][0]
            buyer = await c.make_user(credits=500, flagged=args.flagged)
            writes: Counter[str] = Counter()
            sizes: Counter[str] = Counter()

            def count(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
                targets = [
                    f"{v.split()[0].upper()} {t.lower()}" for v, t in TARGET.findall(statement)
                ]
                if targets:  # one statement (one round trip), whatever it writes
                    name = " + ".join(targets)
                    writes[name] += 1
                    sizes[name] += len(repr(params))

            engine = c.runtime().engine.sync_engine
            event.listen(engine, "before_cursor_execute", count)
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
            event.remove(engine, "before_cursor_execute", count)
    print(
        json.dumps(
            {
                "database": "postgresql" if args.postgres else "sqlite",
                "flagged": args.flagged,
                "saga_log_statements": sum(writes.values()),
                "by_statement": dict(writes),
                "parameter_bytes": sum(sizes.values()),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
