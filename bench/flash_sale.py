"""Flash sale: B buyers race for S seats through the public API of a real `python -m central serve`.

    .venv/bin/python bench/flash_sale.py                                   # embedded default
    .venv/bin/python bench/flash_sale.py --postgres postgresql+asyncpg://postgres@127.0.0.1/flash \
        --amqp amqp://guest:guest@127.0.0.1:5672/                          # PostgreSQL + RabbitMQ
    .venv/bin/python bench/flash_sale.py --quick     # seconds: every step with 8 buyers, 4 seats
    .venv/bin/python bench/flash_sale.py --quick --json --workers 2   # one JSON summary line

Setup (not timed): an admin, an event with S seats, B buyers registered and verified through the
public API (codes from the file OTP backend) and granted credits. Then every buyer races: it picks a
seat not known to be taken, reserves, and pays (the race's calls through bench/raw_http.py, the
generator on uvloop, so that it takes as little of the server's CPU as it can) — except a share of buyers who abandon their hold
(exercising expiry). Prints reserves/s, purchases/s, p50/p99 per call, oversold seats (must be 0)
and seats still HELD after TTL + 5 s (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the checkout
from central.local_processes import CentralProcess, ScaledOutCentral, run_admin  # noqa: E402
from central.progress import Progress  # noqa: E402

# what the run is doing, on stderr as it happens; the figures go to stdout
progress = Progress("flash_sale")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proc_cpu import (  # noqa: E402
    machine_ticks,
    named_cpu_seconds,
    steal_share,
    tree_cpu_seconds,
)
from raw_http import RawHttpPool  # noqa: E402

PASSWORD = "bench password"
# the other servers a purchase uses, by command name: their CPU is part of what a purchase costs
OTHER_SERVERS = ("postgres", "beam.smp")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, float]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(extra_headers or {})
        t0 = time.perf_counter()
        async with self.session.request(method, self.url + path, json=body, headers=headers) as r:
            data = await r.json()
            return r.status, data, time.perf_counter() - t0

    async def setup_call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any, float]:
        """Setup is not measured: a 503 (a loaded machine) is retried, with the same
        Idempotency-Key where the API honours one."""
        key = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(6):
            status, data, dt = await self.call(method, path, token, body, key)
            if status != 503:
                break
            await asyncio.sleep(0.5 * (attempt + 1))
        return status, data, dt


async def setup(
    api: Api, otp_file: Path, args: argparse.Namespace
) -> tuple[list[str], str, list[str]]:
    _, login, _ = await api.setup_call(
        "POST", "/api/auth/login", body={"email": "admin@bench.test", "password": PASSWORD}
    )
    admin = login["data"]["access_token"]
    per_row = 50
    _, ev, _ = await api.setup_call(
        "POST",
        "/api/admin/events",
        admin,
        {
            "name": "Flash",
            "venue": {"name": "Bench"},
            "hall_id": "HALL-A",
            # scale_out.py scans the tickets too: it gives a date whose doors are open now
            "event_date": getattr(args, "event_date", "2099-01-01T20:00:00Z"),
            "pricing": {"STD": 10},
            "seats": {"rows": -(-args.seats // per_row), "seats_per_row": per_row},
        },
    )
    seat_ids = ev["data"]["seat_ids"][: args.seats]
    progress.step(f"event with {len(seat_ids)} seats created; registering {args.buyers} buyers")
    sem = asyncio.Semaphore(8)
    registered = progress.ticker("buyers registered", args.buyers)
    user_ids: list[str] = []

    async def register(i: int) -> None:
        async with sem:
            email = f"b{i}-{uuid.uuid4().hex[:6]}@bench.test"
            status, body, _ = await api.setup_call(
                "POST", "/api/auth/register", body={"email": email, "password": PASSWORD}
            )
            assert status == 201, body
            user_ids.append(body["data"]["user_id"])
            registered()

    await asyncio.gather(*(register(i) for i in range(args.buyers)))
    codes = {}
    for line in (await asyncio.to_thread(otp_file.read_text)).splitlines():
        item = json.loads(line)
        codes[item["user_id"]] = item["code"]
    tokens: list[str] = []
    progress.step("verifying the buyers' codes and granting each 100 credits")
    ready = progress.ticker("buyers ready", len(user_ids))

    async def verify(user_id: str) -> None:
        async with sem:
            status, body, _ = await api.setup_call(
                "POST",
                "/api/auth/verify-registration",
                body={"user_id": user_id, "otp_code": codes[user_id]},
            )
            assert status == 200, body
            tokens.append(body["data"]["access_token"])
            status, body, _ = await api.setup_call(
                "POST", "/api/admin/credits/grant", admin, {"user_id": user_id, "amount": 100}
            )
            assert status == 200, body
            ready()

    await asyncio.gather(*(verify(u) for u in user_ids))
    return seat_ids, ev["data"]["event_id"], tokens


class FreeSeats:
    """The seats not known to be taken, for a uniform random pick in O(1): a list and each seat's
    place in it (a taken seat is swapped with the last and dropped). The race used to rebuild the
    list on every attempt, costing the load generator O(seats) per reserve."""

    def __init__(self, seat_ids: list[str]) -> None:
        self.seats = list(seat_ids)
        self.place = {seat: i for i, seat in enumerate(self.seats)}

    def pick(self, rng: random.Random) -> str | None:
        return self.seats[rng.randrange(len(self.seats))] if self.seats else None

    def take(self, seat: str) -> None:
        i = self.place.pop(seat, None)
        if i is None:
            return  # another buyer's attempt at this seat already took it
        last = self.seats.pop()
        if last != seat:
            self.seats[i] = last
            self.place[last] = i


async def race(
    api: Api, seat_ids: list[str], tokens: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    rng = random.Random(1)
    free = FreeSeats(seat_ids)
    pool = RawHttpPool.for_url(api.url, args.concurrency + 10, timeout=300)

    async def post(path: str, token: str, body: dict[str, Any]) -> tuple[int, Any, float]:
        """The race's calls go through the lean client (bench/raw_http.py): the generator's
        CPU is taken from the server's two cores. A failed connection ends the run, as before."""
        t0 = time.perf_counter()
        status, data = await pool.post_json(path, body, {"Authorization": f"Bearer {token}"})
        return status, data, time.perf_counter() - t0

    lat: dict[str, list[float]] = {"reserve": [], "pay": []}
    counts = {"reserved": 0, "paid": 0, "abandoned": 0, "reserve_refused": 0, "pay_refused": 0}
    paid_seats: list[str] = []
    sem = asyncio.Semaphore(args.concurrency)

    async def buyer(token: str, abandon: bool) -> None:
        async with sem:
            while True:
                seat = free.pick(rng)
                if seat is None:
                    return
                status, body, dt = await post("/api/reserve", token, {"seat_id": seat})
                lat["reserve"].append(dt)
                free.take(seat)
                if status != 200:
                    counts["reserve_refused"] += 1
                    continue
                counts["reserved"] += 1
                if abandon:
                    counts["abandoned"] += 1
                    return
                status, body, dt = await post(
                    "/api/pay", token, {"order_id": body["data"]["order_id"]}
                )
                lat["pay"].append(dt)
                if status == 200:
                    counts["paid"] += 1
                    paid_seats.append(seat)
                else:
                    counts["pay_refused"] += 1
                return

    started = time.perf_counter()
    try:
        await asyncio.gather(*(buyer(t, rng.random() < args.abandon) for t in tokens))
    finally:
        await pool.close()
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "lat": lat, "counts": counts, "paid_seats": paid_seats}


# what --quick sets; tests/docs/quick_runs.py reads it: documented commands that differ only in
# these flags are the same run under --quick, so the docs test runs them once
QUICK = {"buyers": 8, "seats": 4, "concurrency": 8, "hold_ttl": 2}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--seats", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--hold-ttl", type=int, default=10)
    parser.add_argument("--abandon", type=float, default=0.1, help="share of buyers who never pay")
    parser.add_argument("--postgres", help="PostgreSQL URL prefix; a fresh suffix is added")
    parser.add_argument("--amqp", help="RabbitMQ URL")
    parser.add_argument(
        "--scaled-out", action="store_true", help="one process per service (uses both cores)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="serve --workers N: orchestrator processes (unset: the server's default)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON summary line (the rest to stderr)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="seconds, not minutes: 8 buyers, 4 seats, hold TTL 2 s (checks that every step runs)",
    )
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            summary = await run(args)
        print(json.dumps(summary), flush=True)
    else:
        await run(args)


async def run(args: argparse.Namespace) -> dict[str, Any]:

    tmp = Path(tempfile.mkdtemp(prefix="flash-"))
    otp_file = tmp / "otp.jsonl"
    prefix = f"{args.postgres}_{uuid.uuid4().hex[:8]}" if args.postgres else None
    extra = [
        "--hold-ttl",
        str(args.hold_ttl),
        "--log-level",
        "WARNING",
        "--otp-delivery",
        f"file:{otp_file}",
        "--auth-rate-limit",
        "1000000",
    ]
    if args.amqp:
        extra += ["--amqp-url", args.amqp, "--amqp-prefix", f"bench{uuid.uuid4().hex[:6]}."]
    orchestrator_args = ["--workers", str(args.workers)] if args.workers else []
    data_dir = tmp / "data"
    progress.step("creating the admin account")
    run_admin(
        data_dir,
        "create-user",
        "--email",
        "admin@bench.test",
        "--password",
        PASSWORD,
        "--role",
        "admin",
        database_url=prefix,
    )
    central: CentralProcess | ScaledOutCentral
    if args.scaled_out:
        central = ScaledOutCentral(
            data_dir, database_url=prefix, args=extra, orchestrator_args=orchestrator_args
        )
    else:
        central = CentralProcess(data_dir, database_url=prefix, args=extra + orchestrator_args)
    progress.step("starting central")
    central.start()
    backend = "PostgreSQL" + (" + RabbitMQ" if args.amqp else "") if prefix else "SQLite (embedded)"
    backend += ", one process per service" if args.scaled_out else ", serve"
    if args.workers:
        backend += f", {args.workers} orchestrator worker(s)"
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency + 10)
        async with aiohttp.ClientSession(connector=connector) as session:
            api = Api(session, central.url)
            t0 = time.perf_counter()
            seat_ids, event_id, tokens = await setup(api, otp_file, args)
            print(
                f"setup: {len(tokens)} buyers, {len(seat_ids)} seats in {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
            progress.step(f"the race: {len(tokens)} buyers for {len(seat_ids)} seats")
            load_before = os.getloadavg()[0]
            procs = (
                list(central.processes.values())
                if isinstance(central, ScaledOutCentral)
                else [central]
            )
            pids = [p.proc.pid for p in procs if p.proc is not None]
            cpu_before = tree_cpu_seconds(*pids)
            others_before = {name: named_cpu_seconds(name) for name in OTHER_SERVERS}
            loadgen_before = time.process_time()
            ticks_before = machine_ticks()
            result = await race(api, seat_ids, tokens, args)
            steal = steal_share(ticks_before, machine_ticks())
            race_cpu = tree_cpu_seconds(*pids) - cpu_before
            loadgen_cpu = time.process_time() - loadgen_before
            others_cpu = {
                name: named_cpu_seconds(name) - before for name, before in others_before.items()
            }
            load_after = os.getloadavg()[0]
            c = result["counts"]
            oversold = len(result["paid_seats"]) - len(set(result["paid_seats"]))
            progress.step(f"waiting {args.hold_ttl + 5} s for the unpaid holds to lapse")
            await asyncio.sleep(args.hold_ttl + 5)
            _, detail, _ = await api.call("GET", f"/api/events/{event_id}")
            seats = [s for s in detail["data"]["seats"] if s["seat_id"] in set(seat_ids)]
            still_held = sum(1 for s in seats if s["status"] == "HELD")
            sold = sum(1 for s in seats if s["status"] == "SOLD")
        e = result["elapsed"]
        print(
            f"backend: {backend}; buyers {args.buyers}, seats {args.seats}, concurrency {args.concurrency}, abandon {args.abandon}"
        )
        print(f"race time:          {e:.2f} s")
        print(
            f"reserves/s:         {c['reserved'] / e:.1f}  ({c['reserved']} held, {c['reserve_refused']} refused)"
        )
        print(
            f"purchases/s:        {c['paid'] / e:.1f}  ({c['paid']} paid, {c['pay_refused']} refused, {c['abandoned']} abandoned)"
        )
        for name, values in result["lat"].items():
            print(
                f"{name:8s} latency:   p50 {pct(values, 0.5):.1f} ms  p99 {pct(values, 0.99):.1f} ms  (n={len(values)})"
            )
        # Oversold: a seat two buyers were both told they bought. (Sold seats can exceed "paid"
        # answers: a pay that timed out past the point of no return is completed by recovery.)
        print(f"oversold seats:     {oversold}")
        print(f"sold seats:         {sold} ({len(set(result['paid_seats']))} answered 200)")
        print(f"HELD after TTL+5 s: {still_held}")
        paid = c["paid"]

        def per_purchase(seconds: float) -> float | None:
            return round(seconds * 1000 / paid, 1) if paid else None

        machine_cpu = race_cpu + loadgen_cpu + sum(others_cpu.values())
        ceiling = round((os.cpu_count() or 1) * paid / machine_cpu, 1) if paid else None
        print(
            f"CPU per purchase:   server {per_purchase(race_cpu)} ms, PostgreSQL "
            f"{per_purchase(others_cpu['postgres'])} ms, RabbitMQ "
            f"{per_purchase(others_cpu['beam.smp'])} ms, load generator "
            f"{per_purchase(loadgen_cpu)} ms; {os.cpu_count()} cores at that cost: {ceiling}/s"
        )
        print(f"CPU stolen by the hypervisor during the race: {steal}")
        return {
            "bench": "flash_sale",
            "backend": backend,
            "workers": args.workers,
            "buyers": args.buyers,
            "seats": args.seats,
            "concurrency": args.concurrency,
            "race_s": round(e, 2),
            "reserves_per_s": round(c["reserved"] / e, 1),
            "purchases_per_s": round(c["paid"] / e, 1),
            "reserve_p50_ms": round(pct(result["lat"]["reserve"], 0.5), 1),
            "reserve_p99_ms": round(pct(result["lat"]["reserve"], 0.99), 1),
            "pay_p50_ms": round(pct(result["lat"]["pay"], 0.5), 1),
            "pay_p99_ms": round(pct(result["lat"]["pay"], 0.99), 1),
            "counts": c,
            # the server's own CPU (all its processes; not PostgreSQL's or RabbitMQ's) per seat
            # paid during the race: robust to a shared machine, unlike purchases/s
            "server_cpu_ms_per_purchase": per_purchase(race_cpu),
            # every PostgreSQL and RabbitMQ process on the machine (they serve only this run
            # when nothing else uses them), and this load generator
            "postgres_cpu_ms_per_purchase": per_purchase(others_cpu["postgres"]),
            "rabbitmq_cpu_ms_per_purchase": per_purchase(others_cpu["beam.smp"]),
            "loadgen_cpu_ms_per_purchase": per_purchase(loadgen_cpu),
            "machine_cpu_ms_per_purchase": per_purchase(machine_cpu),
            # the most purchases per second with every core busy at that cost
            "cpu_ceiling_per_s": ceiling,
            "oversold": oversold,
            "sold": sold,
            "held_after_ttl": still_held,
            # the machine's 1-minute load average as the race began and ended (it is shared)
            "loadavg": [round(load_before, 2), round(load_after, 2)],
            # the share of the machine's CPU time the hypervisor took away during the race
            "steal": steal,
        }
    finally:
        progress.step("stopping central")
        central.stop()
        if prefix:  # the run's own databases: nothing left behind on the server
            from central.db import drop_postgres_database

            for service in ("inventory", "users", "orders", "events", "orchestrator"):
                await drop_postgres_database(f"{prefix}_{service}")


if __name__ == "__main__":
    uvloop.run(main())
