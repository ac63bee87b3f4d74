"""`serve --workers 2` on PostgreSQL: two orchestrator processes on one port. Bursts released at
once over fresh connections (the kernel spreads them over both processes) reserve one seat, pay
one order and scan one ticket from four gates: one hold, one charge, one admission. A logout
through one process ends the token at every process within a second. No throughput is measured
here (bench/scale_out.py does that)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from central_process import CentralProcess, query, run_admin
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres

pytestmark = needs_postgres
SERVICES = ("inventory", "users", "orders", "events", "orchestrator")
BURST = 12
PASSWORD = "two workers password"


def _workers_of(pid: int) -> int:
    """Child processes of `serve` running an orchestrator worker (multiprocessing spawn)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in cmdline:
            count += 1
    return count


async def _burst(make: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]) -> list[Any]:
    """BURST requests, each on its own connection, released together."""
    go = asyncio.Event()

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            await go.wait()
            return await make(client)

    tasks = [asyncio.create_task(one()) for _ in range(BURST)]
    await asyncio.sleep(0)
    go.set()
    return list(await asyncio.gather(*tasks))


@dataclass
class Shop:
    proc: CentralProcess
    prefix: str
    admin: str
    event_id: str
    seat_ids: list[str]
    otp_file: Path

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        return self.proc.call(method, path, token, **kw)

    def buyer(self) -> str:
        """A new verified customer with 100 credits (the public API, codes from the file)."""
        email = f"b{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD}
        user_id = self.call("POST", "/api/auth/register", json=body)["user_id"]
        code = next(
            line["code"]
            for line in map(json.loads, self.otp_file.read_text().splitlines())
            if line["user_id"] == user_id
        )
        verified = self.call(
            "POST", "/api/auth/verify-registration", json={"user_id": user_id, "otp_code": code}
        )
        self.call(
            "POST", "/api/admin/credits/grant", self.admin, json={"user_id": user_id, "amount": 100}
        )
        return str(verified["access_token"])

    def gate(self) -> str:
        body = {"hall_id": "HALL-A", "name": f"Gate {uuid.uuid4().hex[:4]}"}
        return str(self.call("POST", "/api/admin/gates", self.admin, json=body)["device_token"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One `serve --workers 2` for the module; one operator-made admin, the rest by the API."""
    tmp = tmp_path_factory.mktemp("two-workers")
    prefix = fresh_postgres_prefix()
    otp_file = tmp / "otp.jsonl"
    args = ["--workers", "2", "--log-level", "WARNING", "--otp-delivery", f"file:{otp_file}"]
    proc = CentralProcess(tmp / "data", database_url=prefix, args=args)
    run_admin(tmp / "data", "create-user", "--email", "admin@two.test", "--password", PASSWORD,
              "--role", "admin", database_url=prefix)  # fmt: skip
    proc.start()
    try:
        login = {"email": "admin@two.test", "password": PASSWORD}
        admin = proc.call("POST", "/api/auth/login", json=login)["access_token"]
        starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        event = proc.call(
            "POST",
            "/api/admin/events",
            admin,
            json={
                "name": "Two workers",
                "venue": {"name": "Hall"},
                "hall_id": "HALL-A",
                "event_date": starts,
                "pricing": {"STD": 10},
                "seats": {"rows": 1, "seats_per_row": 2},
            },
        )
        yield Shop(proc, prefix, admin, event["event_id"], event["seat_ids"], otp_file)
    finally:
        proc.stop()
        asyncio.run(drop_prefix_databases(prefix, SERVICES))


async def test_two_workers_one_hold_one_charge_one_admission(shop: Shop) -> None:
    proc, prefix = shop.proc, shop.prefix
    assert proc.proc is not None and _workers_of(proc.proc.pid) == 2
    buyer = await asyncio.to_thread(shop.buyer)
    seat_id = shop.seat_ids[0]
    url, auth = proc.url, {"Authorization": f"Bearer {buyer}"}

    reserves = await _burst(
        lambda c: c.post(url + "/api/reserve", json={"seat_id": seat_id}, headers=auth)
    )
    held = [r.json()["data"]["order_id"] for r in reserves if r.status_code == 200]
    assert len(set(held)) == 1, [r.json() for r in reserves]
    order_id = held[0]

    pays = await _burst(
        lambda c: c.post(url + "/api/pay", json={"order_id": order_id}, headers=auth)
    )
    assert any(r.status_code == 200 for r in pays), [r.json() for r in pays]
    charges = await query(
        prefix,
        "users",
        f"SELECT amount FROM credit_ledger WHERE kind = 'PURCHASE' AND reference_id = '{order_id}'",
    )
    assert [c["amount"] for c in charges] == [-10]

    gates = [await asyncio.to_thread(shop.gate) for _ in range(4)]
    qr = await asyncio.to_thread(shop.call, "GET", f"/api/tickets/{seat_id}/qr", buyer)
    payload = qr["qr_payload"]
    turn = iter(range(BURST))

    def scan(c: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        gate = gates[next(turn) % len(gates)]
        return c.post(
            url + "/api/gate/verify",
            json={"qr_payload": payload, "scan_id": str(uuid.uuid4())},
            headers={"Authorization": f"Bearer {gate}"},
        )

    scans = await _burst(scan)
    verdicts = Counter(r.json()["data"]["result"] for r in scans if r.status_code == 200)
    assert verdicts["SUCCESS"] == 1, [r.json() for r in scans]
    assert verdicts["DUPLICATE"] == sum(verdicts.values()) - 1
    # the entry log (written by each worker's outbox in the background) has one admission
    sql = f"SELECT scan_id FROM entry_logs WHERE seat_id = '{seat_id}' AND result = 'SUCCESS'"
    deadline = time.monotonic() + 15
    while not (admitted := await query(prefix, "inventory", sql)):
        assert time.monotonic() < deadline, "no admission in the entry log"
        await asyncio.sleep(0.1)
    assert len(admitted) == 1


def test_a_logout_at_one_worker_ends_the_token_at_every_worker_within_a_second(
    shop: Shop,
) -> None:
    proc = shop.proc
    auth = {"Authorization": f"Bearer {shop.buyer()}"}
    for _ in range(6):  # fresh connections: both workers now know the holder
        assert httpx.get(proc.url + "/api/credits/balance", headers=auth).status_code == 200
    assert httpx.post(proc.url + "/api/auth/logout", headers=auth).status_code == 200
    logged_out = time.monotonic()
    # from a second after the logout every answer is 401, whichever worker the connection
    # reaches: wait (bounded) until ten fresh connections in a row are refused
    refused_since: float | None = None
    streak = 0
    while streak < 10:
        sent = time.monotonic()
        status = httpx.get(proc.url + "/api/credits/balance", headers=auth).status_code
        if status == 401:
            refused_since = sent if streak == 0 else refused_since
            streak += 1
        else:
            assert status == 200
            streak = 0
            assert sent - logged_out < 1.0, "a worker still accepted the token after 1 s"
    assert refused_since is not None and refused_since - logged_out < 1.0
