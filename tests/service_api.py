"""One atomic service app on a real database, spoken to over real HTTP with the internal
credential — what the orders and events tests (and anything like them) share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient


class ServiceApi:
    """A thin caller that always carries the internal credential and returns (status, body)."""

    def __init__(self, client: TestClient, app: web.Application, token: str, store_key: Any):
        self.client = client
        self.app = app
        self.token = token
        self.store_key = store_key

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"X-Internal-Token": self.token, **kw.pop("headers", {})}
        if isinstance(body, (bytes, str)):
            kw["data"] = body
        elif body is not None:
            kw["json"] = body
        async with self.client.request(method, path, headers=headers, **kw) as resp:
            return resp.status, await resp.json()

    async def rows(self, sql: str) -> list[Any]:
        engine = self.app[self.store_key].engine
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql))).mappings().all())

    async def count(self, table: str) -> int:
        engine = self.app[self.store_key].engine
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)
