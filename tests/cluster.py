"""A whole central system in the test's process: the four atomic services and the orchestrator on
free loopback ports, talking real HTTP and gRPC, on SQLite or on a fresh PostgreSQL prefix."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from central.config import Settings
from central.orchestrator import admin_ops
from central.orchestrator.backends import Backends
from central.serve import start_atomic_services, start_orchestrator


@dataclass
class Cluster:
    url: str
    settings: Settings
    backends: Backends
    session: aiohttp.ClientSession
    otp_file: Path

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
    ) -> tuple[int, Any]:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, self.url + path, json=json_body, data=data, headers=all_headers
        ) as resp:
            text = await resp.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            return resp.status, body

    def otp_codes(self, *, user_id: str | None = None, purpose: str | None = None) -> list[str]:
        """Codes the file delivery backend wrote, oldest first."""
        if not self.otp_file.exists():
            return []
        codes = []
        for line in self.otp_file.read_text().splitlines():
            item = json.loads(line)
            if user_id and item["user_id"] != user_id:
                continue
            if purpose and item["purpose"] != purpose:
                continue
            codes.append(item["code"])
        return codes

    app: Any = None

    def runtime(self) -> Any:
        """The orchestrator's Runtime (saga runner, …) inside this test process."""
        from central.orchestrator.keys import runtime_key

        return self.app[runtime_key]

    async def row_counts(self) -> dict[str, int]:
        """Rows in every table of every service database: proof that a refused call wrote nothing."""
        counts: dict[str, int] = {}
        for service in ("inventory", "users", "orders", "events"):
            engine = create_async_engine(self.settings.database_url_for(service))
            try:
                async with engine.connect() as conn:
                    names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
                    for name in names:
                        if name == "schema_migrations":
                            continue
                        table = sa.table(name)
                        total = await conn.scalar(sa.select(sa.func.count()).select_from(table))
                        counts[f"{service}.{name}"] = int(total or 0)
            finally:
                await engine.dispose()
        return counts

    async def make_user(
        self, *, credits: int = 0, role: str = "customer", flagged: bool = False
    ) -> dict[str, Any]:
        """A verified user made by the operator path; answers the user plus an access token."""
        email = f"u{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        user = await admin_ops.create_user(
            self.backends,
            email=email,
            password=password,
            credits=credits,
            flagged=flagged,
            role=role,
        )
        status, body = await self.call(
            "POST", "/api/auth/login", json_body={"email": email, "password": password}
        )
        assert status == 200, body
        return {**user, "password": password, "token": body["data"]["access_token"]}


@asynccontextmanager
async def running_cluster(
    tmp_path: Path, *, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[Cluster]:
    otp_file = tmp_path / "otp.jsonl"
    settings = Settings(
        data_dir=tmp_path / "data",
        port=0,
        database_url=database_url,
        otp_delivery=f"file:{otp_file}",
        **overrides,
    ).validate()
    async with AsyncExitStack() as stack:
        addresses = await start_atomic_services(stack, settings)
        port, backends, app = await start_orchestrator(stack, settings, addresses)
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        yield Cluster(
            url=f"http://127.0.0.1:{port}",
            settings=settings,
            backends=backends,
            session=session,
            otp_file=otp_file,
            app=app,
        )
