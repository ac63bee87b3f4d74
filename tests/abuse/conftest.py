"""A real central (`python -m central serve`, its own process, SQLite files) for the abuse suite,
an operator-made admin, users registered through the public API, and the ledger of attempts."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.abuse.table import Ledger
from tests.central_process import CentralProcess, run_admin
from tests.conftest import ABUSE_ROWS_DIR

PASSWORD = "correct horse battery"
# The abuse central answers a body that stops arriving after this long (default 10 s).
BODY_TIMEOUT_S = 2


@dataclass
class Central:
    proc: CentralProcess
    otp_file: Path
    admin_token: str

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def data_dir(self) -> Path:
        return self.proc.data_dir

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kw)

    def codes(self, user_id: str, purpose: str) -> list[str]:
        if not self.otp_file.exists():
            return []
        lines = [json.loads(line) for line in self.otp_file.read_text().splitlines() if line]
        return [c["code"] for c in lines if c["user_id"] == user_id and c["purpose"] == purpose]

    def rows(self, service: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read a service's SQLite file directly (read-only): what an attack left behind."""
        path = self.data_dir / f"{service}.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def count(self, service: str, table: str) -> int:
        return int(self.rows(service, f"SELECT count(*) FROM {table}")[0][0])

    def counts(self) -> dict[str, int]:
        out = {}
        for service in ("users", "orders", "events", "inventory", "orchestrator"):
            tables = self.rows(
                service,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            for (name,) in tables:
                if name not in ("schema_migrations", "rate_windows"):
                    out[f"{service}.{name}"] = self.count(service, name)
        return out

    async def user(self, *, credits: int = 0) -> dict[str, Any]:
        """A customer registered and verified through the public API, logged in."""
        email = f"a{uuid.uuid4().hex[:12]}@example.com"
        async with self.client() as c:
            r = await c.post("/api/auth/register", json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
            user_id = r.json()["data"]["user_id"]
            code = self.codes(user_id, "registration")[-1]
            r = await c.post(
                "/api/auth/verify-registration", json={"user_id": user_id, "otp_code": code}
            )
            assert r.status_code == 200, r.text
            r = await c.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            tokens = r.json()["data"]
            if credits:
                r = await c.post(
                    "/api/admin/credits/grant",
                    json={"user_id": user_id, "amount": credits},
                    headers=self.auth(self.admin_token),
                )
                assert r.status_code == 200, r.text
        return {
            "user_id": user_id,
            "email": email,
            "token": tokens["access_token"],
            "refresh": tokens["refresh_token"],
        }

    async def event(
        self, *, rows: int = 2, per_row: int = 10, hall: str = "HALL-A"
    ) -> dict[str, Any]:
        async with self.client() as c:
            r = await c.post(
                "/api/admin/events",
                json={
                    "name": "Abuse night",
                    "venue": {"name": "Main"},
                    "hall_id": hall,
                    "event_date": "2030-01-01T20:00:00+00:00",
                    "doors_open": "2020-01-01T00:00:00+00:00",
                    "doors_close": "2031-01-01T00:00:00+00:00",
                    "pricing": {"STANDARD": 10},
                    "seats": {"rows": rows, "seats_per_row": per_row},
                },
                headers=self.auth(self.admin_token),
            )
            assert r.status_code == 201, r.text
            event = r.json()["data"]
            r = await c.get(f"/api/events/{event['event_id']}")
            assert r.status_code == 200, r.text
        return {**event, "seat_ids": [s["seat_id"] for s in r.json()["data"]["seats"]]}

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="package")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    root = tmp_path_factory.mktemp("abuse")
    data_dir = root / "data"
    otp_file = root / "otp.jsonl"
    admin_email = "admin@example.com"
    run_admin(
        data_dir,
        "create-user",
        "--email",
        admin_email,
        "--password",
        PASSWORD,
        "--role",
        "admin",
    )
    proc = CentralProcess(
        data_dir, args=["--otp-delivery", f"file:{otp_file}", "--body-timeout", str(BODY_TIMEOUT_S)]
    ).start()
    try:
        r = httpx.post(
            proc.url + "/api/auth/login",
            json={"email": admin_email, "password": PASSWORD},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        yield Central(proc, otp_file, r.json()["data"]["access_token"])
    finally:
        proc.stop()


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    return Ledger(ABUSE_ROWS_DIR, request.node.nodeid)


async def released_at_once(*calls: Any) -> list[Any]:
    """Run the coroutine factories together, all released by one event (a burst)."""
    go = asyncio.Event()

    async def one(call: Any) -> Any:
        await go.wait()
        return await call()

    tasks = [asyncio.create_task(one(c)) for c in calls]
    await asyncio.sleep(0.05)
    go.set()
    return list(await asyncio.gather(*tasks))
