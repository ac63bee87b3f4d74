"""Fixtures for the users service: a migrated engine on each database, a movable clock, a cheap
password hasher (tests only), and the real HTTP app behind aiohttp's test client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from central.config import Settings
from central.db import make_engine, migrate
from central.users.app import create_app, services_key
from central.users.schema import STEPS, metadata

INTERNAL_TOKEN = "test-internal-token"
HEADERS = {"X-Internal-Token": INTERNAL_TOKEN}


class FakeClock:
    """A clock tests move by hand; starts at the real time so JWT iat/exp look normal."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hasher() -> PasswordHasher:
    # Cheap parameters so a test suite can register hundreds of users; production keeps defaults.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = await make_engine(db_url)
    await migrate(eng, STEPS)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def otp_file(tmp_path: Path) -> Path:
    return tmp_path / "otp.jsonl"


def read_codes(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_code(path: Path, user_id: str, purpose: str = "registration") -> str:
    codes = [c for c in read_codes(path) if c["user_id"] == user_id and c["purpose"] == purpose]
    assert codes, f"no {purpose} code was delivered for {user_id}"
    return str(codes[-1]["code"])


@pytest.fixture
def settings(tmp_path: Path, db_url: str, otp_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        service_database_urls={"users": db_url},
        otp_delivery=f"file:{otp_file}",
        internal_token=INTERNAL_TOKEN,
        jwt_secret="test-jwt-secret-0123456789abcdef",
    )


AppFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def make_client(
    aiohttp_client: Any, settings: Settings, clock: FakeClock, hasher: PasswordHasher
) -> AppFactory:
    async def make(**overrides: Any) -> TestClient[web.Request, web.Application]:
        app_settings = overrides.pop("settings", settings)
        kwargs: dict[str, Any] = {"clock": clock, "password_hasher": hasher}
        kwargs.update(overrides)
        app = create_app(app_settings, **kwargs)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: AppFactory) -> TestClient[web.Request, web.Application]:
    return await make_client()


async def row_counts(client: TestClient[web.Request, web.Application]) -> dict[str, int]:
    """Rows in every users table: a rejected request must leave all of them unchanged."""
    engine = client.app[services_key].users.engine
    out = {}
    async with engine.connect() as conn:
        for name, table in metadata.tables.items():
            out[name] = int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
    return out


async def call(
    client: TestClient[web.Request, web.Application],
    method: str,
    path: str,
    body: Any = None,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    resp = await client.request(method, path, json=body, headers=HEADERS, **kwargs)
    return resp.status, await resp.json()


async def register(
    client: TestClient[web.Request, web.Application],
    email: str = "ann@example.com",
    *,
    password: str = "correct horse battery",
    **extra: Any,
) -> dict[str, Any]:
    status, body = await call(
        client, "POST", "/users", {"email": email, "password": password, **extra}
    )
    assert status == 201, body
    return dict(body["data"])
