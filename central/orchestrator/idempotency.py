"""`Idempotency-Key`: the first answer to a (caller, route, key) is stored and every repeat gets
it back without running again. A concurrent repeat waits for the first to finish. An answer of 5xx
is not stored (the caller should retry). A key reused with a different body is refused. A first
request that died mid-way (process killed) is taken over after `stale_after` seconds; what it ran is
idempotent underneath (saga steps carry their own keys)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import autocommit
from central.direct_sql import DirectPool, HotStatement
from central.errors import ApiError
from central.saga.schema import idempotency_keys as keys
from central.saga.wakeups import Wakeups, idempotency_topic

Answer = tuple[int, dict[str, Any]]
MAX_KEY_LENGTH = 200


# Two to four of these per purchase: built once, run on the driver (central/direct_sql.py).
_THIS_KEY = (
    keys.c.scope == sa.bindparam("p_scope", type_=sa.String),
    keys.c.key == sa.bindparam("p_key", type_=sa.String),
)
_MINE = (*_THIS_KEY, keys.c.owner == sa.bindparam("p_owner", type_=sa.String))
CLAIM = HotStatement(
    keys.insert().values(
        scope=sa.bindparam("p_scope", type_=sa.String),
        key=sa.bindparam("p_key", type_=sa.String),
        request_hash=sa.bindparam("p_request_hash", type_=sa.String),
        owner=sa.bindparam("p_owner", type_=sa.String),
        created_at=sa.bindparam("p_created_at", type_=sa.Float),
    )
)
GET = HotStatement(sa.select(keys).where(*_THIS_KEY))
TAKE_OVER = HotStatement(
    keys.update()
    .where(*_THIS_KEY, keys.c.owner == sa.bindparam("p_old_owner"), keys.c.status.is_(None))
    .values(
        owner=sa.bindparam("p_new_owner", type_=sa.String),
        created_at=sa.bindparam("p_created_at", type_=sa.Float),
    )
)
STORE = HotStatement(
    keys.update()
    .where(*_MINE)
    .values(
        status=sa.bindparam("p_status", type_=sa.Integer),
        body=sa.bindparam("p_body", type_=sa.Text),
    )
)
RELEASE = HotStatement(keys.delete().where(*_MINE))


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IdempotencyStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        stale_after: float = 60.0,
        wait: float = 30.0,
        wakeups: Wakeups | None = None,
    ):
        # Every statement here stands alone: autocommit spares the BEGIN/COMMIT round trips.
        self.engine = autocommit(engine)
        self.direct = DirectPool.of(engine)
        self.owner = uuid.uuid4().hex
        self.stale_after = stale_after
        self.wait = wait
        # A repeat waiting for the first request is woken when it answers or lets go.
        self.wakeups = wakeups or Wakeups()

    async def run(
        self, scope: str, key: str, digest: str, handler: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ApiError("VALIDATION_ERROR", f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} characters")
        deadline = time.monotonic() + self.wait
        with self.wakeups.watch(idempotency_topic(scope, key)) as woken:
            while True:
                woken.clear()
                claimed = await self._claim(scope, key, digest)
                if claimed:
                    break
                row = await self._get(scope, key)
                if row is None:
                    continue  # the first attempt answered 5xx and let go; try to claim again
                if row["request_hash"] != digest:
                    raise ApiError(
                        "IDEMPOTENCY_CONFLICT",
                        "this Idempotency-Key was used with a different body",
                    )
                if row["status"] is not None:
                    return int(row["status"]), json.loads(row["body"])
                if time.time() - row["created_at"] > self.stale_after and await self._take_over(
                    scope, key, row["owner"]
                ):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiError(
                        "SERVICE_UNAVAILABLE", "the first request with this key is still running"
                    )
                # Woken when the first request answers or lets go (here or, on PostgreSQL, in
                # another process); re-read at the slow fallback interval otherwise.
                await self.wakeups.wait(woken, left)
        try:
            status, body = await handler()
        except ApiError as err:
            status, body = err.status, err.body()
        except BaseException:
            await self._release(scope, key)
            raise
        if status >= 500:
            await self._release(scope, key)
        else:
            await self._store(scope, key, status, body)
        return status, body

    async def _claim(self, scope: str, key: str, digest: str) -> bool:
        row = {
            "p_scope": scope,
            "p_key": key,
            "p_request_hash": digest,
            "p_owner": self.owner,
            "p_created_at": time.time(),
        }
        try:
            await self.direct.execute(CLAIM, row)
            return True
        except IntegrityError:
            return False

    async def _get(self, scope: str, key: str) -> Any:
        return await self.direct.fetchrow(GET, {"p_scope": scope, "p_key": key})

    async def _take_over(self, scope: str, key: str, old_owner: str) -> bool:
        changed = await self.direct.execute(
            TAKE_OVER,
            {
                "p_scope": scope,
                "p_key": key,
                "p_old_owner": old_owner,
                "p_new_owner": self.owner,
                "p_created_at": time.time(),
            },
        )
        return changed == 1

    async def _store(self, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
        await self.direct.execute(
            STORE,
            {
                "p_scope": scope,
                "p_key": key,
                "p_owner": self.owner,
                "p_status": status,
                "p_body": json.dumps(body),
            },
        )
        self.wakeups.notify(idempotency_topic(scope, key))

    async def _release(self, scope: str, key: str) -> None:
        await self.direct.execute(RELEASE, {"p_scope": scope, "p_key": key, "p_owner": self.owner})
        self.wakeups.notify(idempotency_topic(scope, key))
