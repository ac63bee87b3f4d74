"""Verification load: G simulated gates send valid, duplicate and invalid scans at a rising rate to
POST /api/gate/verify of a real `python -m central serve` (a subprocess).

Setup (not timed): an admin (admin CLI), an event in HALL-A, G gates, S seats bought through
reserve/pay by one buyer. Each step sends scans open-loop at a fixed rate for D seconds: a share of
invalid texts, each seat's first scan (SUCCESS, while unscanned seats last) and otherwise a scan of
an admitted seat (DUPLICATE: the full fan-out without the write). QR payloads are signed with the
server's own key ring from its data directory, exactly what GET /api/tickets/{id}/qr answers.
Prints, per rate: sent/s, verifications/s completed, p50/p99/max latency, results, errors.

Run: .venv/bin/python bench/verify_load.py [--database-url postgresql+asyncpg://postgres@127.0.0.1/vb]
     [--gates 20] [--seats 600] [--rates 100,200,400,600,800,1000,1200] [--duration 5]
     [--workers N] [--mix default|doors] [--client raw|aiohttp] [--json] [--quick]
     (--quick: seconds: 2 gates, 20 seats, rates 20,40 for 1 s each)
--json prints one JSON summary line on stdout (the table goes to stderr).
--mix doors: every scan a ticket's first (a venue's doors), not the default's 20 % invalid texts
and 40 % duplicates.
The load generator shares the machine (and its cores) with the server. Per rate it also prints the
CPU per verdict of the server, of PostgreSQL and of itself, and what that total allows with every
core busy (`cpu_ceiling_per_s`): the most this machine can verify at that cost. The scans go out
through bench/raw_http.py (`--client raw`, the default: plain keep-alive HTTP/1.1, the least CPU
taken from the server) or through aiohttp's client (`--client aiohttp`, as before); the setup
always uses aiohttp. The generator runs on uvloop, as the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere in the checkout

import aiohttp  # noqa: E402
import uvloop  # noqa: E402

from central.local_processes import ScaledOutCentral, free_port  # noqa: E402
from central.progress import Progress  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from proc_cpu import (  # noqa: E402
    machine_ticks,
    named_cpu_seconds,
    steal_share,
    tree_cpu_seconds,
)
from raw_http import RawHttpError, RawHttpPool  # noqa: E402

from central.signing import KeyRing  # noqa: E402

# what the run is doing, on stderr as it happens; the figures go to stdout
progress = Progress("verify_load")

PASSWORD = "bench-password-1"
INVALID_SHARE = 0.2


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def admin_cli(data_dir: Path, database_url: str | None, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "central", "admin", "--data-dir", str(data_dir)]
    if database_url:
        cmd += ["--database-url", database_url]
    out = subprocess.run(  # setup only, before any load
        cmd + list(args), capture_output=True, text=True, cwd=ROOT, check=True, timeout=120
    )
    return dict(json.loads(out.stdout))


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """Setup calls (not measured): a 503 (a loaded machine) is retried, with the same
        Idempotency-Key where the API honours one."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["Idempotency-Key"] = str(uuid.uuid4())
        for attempt in range(6):
            async with self.session.request(
                method, self.url + path, json=body, headers=headers
            ) as resp:
                status, answer = resp.status, await resp.json()
            if status != 503:
                break
            await asyncio.sleep(0.5 * (attempt + 1))
        return status, answer


async def setup(api: Api, data_dir: Path, db: str | None, gates: int, seats: int) -> dict[str, Any]:
    progress.step("setup: an admin, a buyer, an event, the gates")
    admin_cli(data_dir, db, "create-user", "--email", "admin@vb.test", "--password", PASSWORD,
              "--role", "admin")  # fmt: skip
    admin_cli(data_dir, db, "create-user", "--email", "buyer@vb.test", "--password", PASSWORD,
              "--credits", str(seats * 10))  # fmt: skip
    tokens = {}
    for who in ("admin", "buyer"):
        _, body = await api.call(
            "POST", "/api/auth/login", body={"email": f"{who}@vb.test", "password": PASSWORD}
        )
        tokens[who] = body["data"]["access_token"]
    per_row = max(50, -(-seats // 200))  # an event has at most 200 rows of at most 500 seats
    _, event = await api.call(
        "POST",
        "/api/admin/events",
        tokens["admin"],
        {
            "name": "Verify bench",
            "venue": {"name": "Bench Hall"},
            "hall_id": "HALL-A",
            "event_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
            "pricing": {"STD": 10},
            "seats": {"rows": -(-seats // per_row), "seats_per_row": per_row},
        },
    )
    if "data" not in event:  # e.g. more seats than an event may have: say so, not KeyError
        raise SystemExit(f"verify_load: the bench event was refused: {event.get('error', event)}")
    seat_ids = event["data"]["seat_ids"][:seats]
    gate_tokens = []
    for i in range(gates):
        _, gate = await api.call(
            "POST", "/api/admin/gates", tokens["admin"], {"hall_id": "HALL-A", "name": f"G{i}"}
        )
        gate_tokens.append(gate["data"]["device_token"])
    limit = asyncio.Semaphore(16)
    progress.step(f"setup: buying {len(seat_ids)} seats")
    bought = progress.ticker("seats bought", len(seat_ids))

    async def buy(seat_id: str) -> None:
        async with limit:
            status, body = await api.call(
                "POST", "/api/reserve", tokens["buyer"], {"seat_id": seat_id}
            )
            assert status == 200, body
            status, body = await api.call(
                "POST", "/api/pay", tokens["buyer"], {"order_id": body["data"]["order_id"]}
            )
            assert status == 200, body
            bought()

    started = time.perf_counter()
    await asyncio.gather(*(buy(s) for s in seat_ids))
    print(f"setup: {len(seat_ids)} seats bought in {time.perf_counter() - started:.1f} s")
    return {"seat_ids": seat_ids, "gates": gate_tokens}


# one scan sent: (status, the answer's JSON)
Send = Callable[[str, str], Awaitable[tuple[int, Any]]]
SEND_ERRORS = (aiohttp.ClientError, RawHttpError, TimeoutError, ValueError)


def aiohttp_sender(api: Api) -> Send:
    async def send(payload: str, gate: str) -> tuple[int, Any]:
        async with api.session.post(
            api.url + "/api/gate/verify",
            json={"qr_payload": payload, "scan_id": str(uuid.uuid4())},
            headers={"Authorization": f"Bearer {gate}"},
        ) as resp:
            return resp.status, await resp.json()

    return send


def raw_sender(pool: RawHttpPool) -> Send:
    async def send(payload: str, gate: str) -> tuple[int, Any]:
        return await pool.post_json(
            "/api/gate/verify",
            {"qr_payload": payload, "scan_id": str(uuid.uuid4())},
            {"Authorization": f"Bearer {gate}"},
        )

    return send


async def run_step(
    send: Send, ring: KeyRing, plan: dict[str, Any], fresh: list[str], used: list[str],
    rate: int, duration: float, rng: random.Random, server_pids: list[int], mix: str,
) -> dict[str, Any]:  # fmt: skip
    latencies: list[float] = []
    results: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    total = int(rate * duration)
    now = time.time()
    # Every code this step can show, signed before its clock starts: phones make the codes, not
    # the gates, so the signing is not the load generator's CPU during the step.
    tokens = {seat_id: ring.sign(seat_id, 1, now) for seat_id in (*used, *fresh[-total:])}

    def payload_for(seat_id: str) -> str:
        if seat_id not in tokens:
            tokens[seat_id] = ring.sign(seat_id, 1, now)
        return tokens[seat_id]

    async def one(payload: str, gate: str) -> None:
        t0 = time.perf_counter()
        try:
            status, body = await send(payload, gate)
            if status == 200:
                results[body["data"]["result"]] += 1
            else:
                errors[str((body or {}).get("error_code", status))] += 1
        except SEND_ERRORS as exc:
            errors[type(exc).__name__] += 1
        latencies.append((time.perf_counter() - t0) * 1000)

    tasks = []
    cpu_before = tree_cpu_seconds(*server_pids)
    postgres_before = named_cpu_seconds("postgres")
    loadgen_before = time.process_time()
    ticks_before = machine_ticks()
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        roll = rng.random()
        if mix == "doors" and fresh:  # every scan a ticket's first
            seat_id = fresh.pop()
            used.append(seat_id)
            payload = payload_for(seat_id)
        elif roll < INVALID_SHARE:
            payload = "TR1:" + "".join(rng.choices("0123456789ABCDEF", k=135))
        elif fresh and roll < 0.6:
            seat_id = fresh.pop()
            used.append(seat_id)
            payload = payload_for(seat_id)
        elif used:
            payload = payload_for(rng.choice(used))
        else:
            payload = payload_for(fresh[-1])
        tasks.append(asyncio.create_task(one(payload, plan["gates"][i % len(plan["gates"])])))
    sent_s = time.perf_counter() - start
    await asyncio.gather(*tasks)
    done_s = time.perf_counter() - start
    cpu = tree_cpu_seconds(*server_pids) - cpu_before
    postgres = named_cpu_seconds("postgres") - postgres_before
    loadgen = time.process_time() - loadgen_before
    steal = steal_share(ticks_before, machine_ticks())
    verdicts = sum(results.values())

    def per_verdict(seconds: float) -> float | None:
        return round(seconds * 1000 / verdicts, 2) if verdicts else None

    return {
        "rate": rate,
        "sent_per_s": round(total / sent_s, 1),
        "verified_per_s": round(sum(results.values()) / done_s, 1),
        "p50_ms": round(pct(latencies, 0.50), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "results": dict(results),
        "errors": dict(errors),
        # the server's own CPU per verdict (all its processes; not PostgreSQL's): robust to a
        # shared machine, where verified/s mostly says how much CPU the server was given
        "server_cpu_ms_per_verdict": per_verdict(cpu),
        # every PostgreSQL process on the machine (0 on SQLite), and this load generator
        "postgres_cpu_ms_per_verdict": per_verdict(postgres),
        "loadgen_cpu_ms_per_verdict": per_verdict(loadgen),
        # what the whole machine spends per verdict, and so the most it can verify per second
        # with every core busy at this cost: the ceiling the goals meet on this hardware
        "machine_cpu_ms_per_verdict": per_verdict(cpu + postgres + loadgen),
        "cpu_ceiling_per_s": (
            round((os.cpu_count() or 1) * verdicts / (cpu + postgres + loadgen))
            if verdicts and cpu + postgres + loadgen > 0
            else None
        ),
        # the share of the machine's CPU time the hypervisor took away during the step
        "steal": steal,
    }


# The setup buys every seat as one buyer: lift the per-user hold and reserve limits for it.
NO_BUYER_LIMITS = ["--max-holds-per-user", "0", "--reserve-rate-limit", "100000"]


def summarize(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures the goals are stated in: the highest rate served in full at p99 <= 50 ms,
    and the most verified per second at any rate."""
    held = [
        r["rate"] for r in rows if r["p99_ms"] <= 50 and r["verified_per_s"] >= 0.97 * r["rate"]
    ]
    return {
        "bench": "verify_load",
        "store": "PostgreSQL" if args.database_url else "SQLite",
        "shape": "scaled-out" if args.scaled_out else "serve",
        "workers": args.workers,
        "gates": args.gates,
        "duration_s": args.duration,
        "mix": args.mix,
        "max_rate_p99_le_50ms": max(held, default=0),
        "max_verified_per_s": max((r["verified_per_s"] for r in rows), default=0),
        "rows": rows,
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    data_dir = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    port = free_port()
    db = args.database_url
    if db:  # a fresh prefix per run: PREFIX_<service> databases, created by the services
        db = f"{db}_{uuid.uuid4().hex[:8]}"
    scaled: ScaledOutCentral | None = None
    server = None
    if args.scaled_out:  # one process per service: both cores at work
        scaled = ScaledOutCentral(
            data_dir,
            database_url=db,
            args=["--log-level", "WARNING", *NO_BUYER_LIMITS],
            orchestrator_args=["--workers", str(args.workers)] if args.workers else [],
        )
        await asyncio.to_thread(scaled.start)
        url = scaled.url
        print(f"scaled out: 5 processes ({'PostgreSQL ' + db if db else 'SQLite'})")
    else:
        cmd = [sys.executable, "-m", "central", "serve", "--data-dir", str(data_dir),
               "--port", str(port), *NO_BUYER_LIMITS] + (["--database-url", db] if db else [])  # fmt: skip
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        env = {**os.environ, "TR_LOG_LEVEL": "WARNING"}
        server_log = (data_dir / "server.log").open("wb")
        server = await asyncio.create_subprocess_exec(
            *cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=server_log
        )
        url = f"http://127.0.0.1:{port}"
        print(f"server pid {server.pid} on :{port} ({'PostgreSQL ' + db if db else 'SQLite'})")
    progress.step("waiting for central to answer /health")
    pool: RawHttpPool | None = None
    try:
        connector = aiohttp.TCPConnector(limit=args.connections)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            for _ in range(600):
                try:
                    async with session.get(url + "/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("server did not become healthy")
            api = Api(session, url)
            plan = await setup(api, data_dir, db, args.gates, args.seats)
            pool = RawHttpPool.for_url(url, args.connections)
            send = raw_sender(pool) if args.client == "raw" else aiohttp_sender(api)
            ring = KeyRing.load_or_create(data_dir)
            fresh = list(plan["seat_ids"])
            used: list[str] = []
            rng = random.Random(7)
            print(f"{args.gates} gates, {args.duration:.0f} s per rate, " + (
                "every scan a first scan while seats last" if args.mix == "doors" else
                f"{INVALID_SHARE:.0%} invalid, first scans while seats last, else duplicates"))  # fmt: skip
            print(f"{'rate':>6} {'sent/s':>8} {'verif/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'max ms':>8}  results / errors")  # fmt: skip
            for number, rate in enumerate(args.rates, start=1):
                progress.step(
                    f"rate {number} of {len(args.rates)}: {rate} scans/s for {args.duration:.0f} s"
                )
                load = os.getloadavg()[0]
                pids = (
                    [p.proc.pid for p in scaled.processes.values() if p.proc is not None]
                    if scaled is not None
                    else [server.pid]
                    if server is not None
                    else []
                )
                row = await run_step(
                    send, ring, plan, fresh, used, rate, args.duration, rng, pids, args.mix
                )
                # the shared machine's 1-minute load average as the step began
                row["loadavg"] = round(load, 2)
                rows.append(row)
                print(f"{row['rate']:>6} {row['sent_per_s']:>8} {row['verified_per_s']:>8} "
                      f"{row['p50_ms']:>8} {row['p99_ms']:>8} {row['max_ms']:>8}  "
                      f"{row['results']} {row['errors'] or ''}", flush=True)  # fmt: skip
                print(f"{'':>6} CPU ms per verdict: server {row['server_cpu_ms_per_verdict']}, "
                      f"PostgreSQL {row['postgres_cpu_ms_per_verdict']}, load generator "
                      f"{row['loadgen_cpu_ms_per_verdict']}; {os.cpu_count()} cores at that "
                      f"cost: {row['cpu_ceiling_per_s']}/s; stolen by the hypervisor: "
                      f"{row['steal']}", flush=True)  # fmt: skip
                await asyncio.sleep(1)
    finally:
        if pool is not None:
            await pool.close()
        progress.step("stopping central")
        if scaled is not None:
            await asyncio.to_thread(scaled.stop)
        if server is not None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 20)
            except TimeoutError:
                server.kill()
            server_log.close()
        if db:
            from central.db import drop_postgres_database

            for service in ("inventory", "users", "orders", "events", "orchestrator"):
                await drop_postgres_database(f"{db}_{service}")
    return rows


# what --quick sets; tests/docs/quick_runs.py reads it: documented commands that differ only in
# these flags are the same run under --quick, so the docs test runs them once
QUICK = {"gates": 2, "seats": 20, "rates": [20, 40], "duration": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--scaled-out", action="store_true", help="one process per service (uses both cores)"
    )
    parser.add_argument("--gates", type=int, default=20)
    parser.add_argument("--seats", type=int, default=600)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument(
        "--mix",
        choices=("default", "doors"),
        default="default",
        help="default: 20%% invalid, first scans, duplicates; doors: every scan a ticket's first "
        "(give --seats >= the scans of every rate)",
    )
    parser.add_argument(
        "--rates",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100, 200, 400, 600, 800, 1000, 1200],
    )
    parser.add_argument(
        "--workers", type=int, help="serve --workers N (unset: the server's default)"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="how scans are sent: raw keep-alive HTTP/1.1 (least CPU) or aiohttp's client",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON summary line on stdout; the table on stderr"
    )
    parser.add_argument(
        "--quick", action="store_true", help="seconds, not minutes: checks that every step runs"
    )
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            rows = uvloop.run(main_async(args))
        print(json.dumps(summarize(args, rows)), flush=True)
    else:
        uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
