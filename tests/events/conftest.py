"""An events service on a real database (SQLite and PostgreSQL), spoken to over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient

from central.config import Settings
from central.events.app import create_app, store_key

TOKEN = "events-test-token"


class Api:
    """A thin caller that always carries the internal credential and returns (status, body)."""

    def __init__(self, client: TestClient, app: web.Application):
        self.client = client
        self.app = app

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"X-Internal-Token": TOKEN, **kw.pop("headers", {})}
        if isinstance(body, (bytes, str)):
            kw["data"] = body
        elif body is not None:
            kw["json"] = body
        async with self.client.request(method, path, headers=headers, **kw) as resp:
            return resp.status, await resp.json()

    async def rows(self, sql: str) -> list[Any]:
        engine = self.app[store_key].engine
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql))).mappings().all())

    async def count(self, table: str) -> int:
        return len(await self.rows(f"SELECT * FROM {table}"))


@pytest.fixture
async def api(aiohttp_client: Any, db_url: str, tmp_path: Path) -> Api:
    settings = Settings(
        data_dir=tmp_path, internal_token=TOKEN, service_database_urls={"events": db_url}
    )
    app = create_app(settings)
    return Api(await aiohttp_client(app), app)
