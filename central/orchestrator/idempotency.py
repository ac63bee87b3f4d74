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
from central.errors import ApiError
from central.saga.schema import idempotency_keys as keys
from central.saga.wakeups import Wakeups, idempotency_topic

Answer = tuple[int, dict[str, Any]]
MAX_KEY_LENGTH = 200


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
                if row.request_hash != digest:
                    raise ApiError(
                        "IDEMPOTENCY_CONFLICT",
                        "this Idempotency-Key was used with a different body",
                    )
                if row.status is not None:
                    return int(row.status), json.loads(row.body)
                if time.time() - row.created_at > self.stale_after and await self._take_over(
                    scope, key, row.owner
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
        try:
            async with self.engine.connect() as conn:
                await conn.execute(
                    keys.insert().values(
                        scope=scope,
                        key=key,
                        request_hash=digest,
                        owner=self.owner,
                        created_at=time.time(),
                    )
                )
            return True
        except IntegrityError:
            return False

    async def _get(self, scope: str, key: str) -> Any:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(sa.select(keys).where(keys.c.scope == scope, keys.c.key == key))
            ).first()

    async def _take_over(self, scope: str, key: str, old_owner: str) -> bool:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                keys.update()
                .where(
                    keys.c.scope == scope,
                    keys.c.key == key,
                    keys.c.owner == old_owner,
                    keys.c.status.is_(None),
                )
                .values(owner=self.owner, created_at=time.time())
            )
        return result.rowcount == 1

    async def _store(self, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(
                keys.update()
                .where(keys.c.scope == scope, keys.c.key == key, keys.c.owner == self.owner)
                .values(status=status, body=json.dumps(body))
            )
        self.wakeups.notify(idempotency_topic(scope, key))

    async def _release(self, scope: str, key: str) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(
                keys.delete().where(
                    keys.c.scope == scope, keys.c.key == key, keys.c.owner == self.owner
                )
            )
        self.wakeups.notify(idempotency_topic(scope, key))
