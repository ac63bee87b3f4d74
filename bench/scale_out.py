"""Scale-out: one, then two orchestrator processes (`serve --service orchestrator --workers N`)
against one PostgreSQL, every atomic service in its own process; throughput of each and the ratio,
then the invariants: no seat or order charged twice, no ticket admitted twice.

    .venv/bin/python bench/scale_out.py --postgres postgresql+asyncpg://postgres@127.0.0.1/scale

Each run starts from fresh databases. Purchases: B buyers race for S seats (bench/flash_sale.py's
race, closed loop at --concurrency). Verification: G gates scan the sold tickets closed loop at
--scan-concurrency for --scan-seconds; every ticket is scanned by two gates at once first (a
double admission would show), then duplicates and invalid codes. Setup is not timed.
--json prints one JSON summary line (the rest goes to stderr); --quick runs small sizes in
seconds (a check that every step works, not a measurement).
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
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # run from anywhere in the checkout
sys.path.insert(0, str(BENCH))
import flash_sale  # noqa: E402
from proc_cpu import machine_ticks, steal_share  # noqa: E402

from central.local_processes import ScaledOutCentral, run_admin  # noqa: E402
from central.signing import KeyRing  # noqa: E402

SERVICES = ("inventory", "users", "orders", "events", "orchestrator")


async def query(url: str, sql: str) -> list[dict[str, Any]]:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(sa.text(sql))]
    finally:
        await engine.dispose()


async def invariants(prefix: str, sold_answers: Counter[str]) -> dict[str, int]:
    """Counted in the databases after the run (and in the answers the clients got)."""
    ledger = await query(
        f"{prefix}_users",
        "SELECT reference_id, kind, amount FROM credit_ledger "
        "WHERE kind IN ('PURCHASE', 'REFUND') AND reference_id IS NOT NULL",
    )
    orders = await query(f"{prefix}_orders", "SELECT order_id, seat_id, status FROM orders")
    admitted = await query(
        f"{prefix}_inventory",
        "SELECT seat_id, count(*) AS n FROM entry_logs WHERE result = 'SUCCESS' GROUP BY seat_id",
    )
    purchases = Counter(r["reference_id"] for r in ledger if r["kind"] == "PURCHASE")
    net: Counter[str] = Counter()
    for r in ledger:
        net[r["reference_id"]] += -int(r["amount"])
    seat_of = {o["order_id"]: o["seat_id"] for o in orders}
    status_of = {o["order_id"]: o["status"] for o in orders}
    charged_orders_per_seat = Counter(seat_of.get(ref, "?") for ref, n in net.items() if n > 0)
    confirmed_per_seat = Counter(o["seat_id"] for o in orders if o["status"] == "CONFIRMED")
    return {
        "orders_charged_twice": sum(1 for n in purchases.values() if n > 1),
        "seats_charged_twice": sum(1 for n in charged_orders_per_seat.values() if n > 1),
        "charged_not_confirmed": sum(
            1 for ref, n in net.items() if n > 0 and status_of.get(ref) != "CONFIRMED"
        ),
        "oversold": sum(1 for n in confirmed_per_seat.values() if n > 1),
        "double_admissions": sum(1 for r in admitted if int(r["n"]) > 1),
        "double_admissions_answered": sum(1 for n in sold_answers.values() if n > 1),
    }


async def scan_load(
    session: aiohttp.ClientSession,
    url: str,
    ring: KeyRing,
    gates: list[str],
    seat_ids: list[str],
    *,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """Closed loop: `concurrency` scans in flight for `seconds`. Each sold ticket is first
    scanned by two gates at once; then duplicates and invalid codes."""
    rng = random.Random(11)
    now = time.time()
    payloads = {s: ring.sign(s, 1, now) for s in seat_ids}
    first = [s for s in seat_ids for _ in (0, 1)]  # every ticket twice, back to back
    results: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    success_by_seat: Counter[str] = Counter()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:
            if first:
                seat_id: str | None = first.pop()
                payload = payloads[seat_id]
            elif rng.random() < 0.2:
                seat_id, payload = None, "TR1:" + "".join(rng.choices("0123456789ABCDEF", k=135))
            else:
                seat_id = rng.choice(seat_ids)
                payload = payloads[seat_id]
            gate = gates[(index + len(first)) % len(gates)]
            t0 = time.perf_counter()
            try:
                async with session.post(
                    url + "/api/gate/verify",
                    json={"qr_payload": payload, "scan_id": str(uuid.uuid4())},
                    headers={"Authorization": f"Bearer {gate}"},
                ) as resp:
                    body = await resp.json()
                    if resp.status == 200:
                        result = body["data"]["result"]
                        results[result] += 1
                        if result == "SUCCESS" and seat_id is not None:
                            success_by_seat[seat_id] += 1
                    else:
                        errors[str(body.get("error_code", resp.status))] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
            latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [float("nan")]
    return {
        "verified_per_s": round(sum(results.values()) / elapsed, 1),
        "p50_ms": round(ordered[len(ordered) // 2], 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "results": dict(results),
        "errors": dict(errors),
        "success_by_seat": success_by_seat,
    }


async def one_run(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"scale{workers}-"))
    otp_file = tmp / "otp.jsonl"
    data_dir = tmp / "data"
    prefix = f"{args.postgres}_{uuid.uuid4().hex[:8]}"
    base = [
        "--log-level", "WARNING", "--otp-delivery", f"file:{otp_file}",
        "--auth-rate-limit", "1000000", "--hold-ttl", str(args.hold_ttl),
    ]  # fmt: skip
    run_admin(data_dir, "create-user", "--email", "admin@bench.test", "--password",
              flash_sale.PASSWORD, "--role", "admin", database_url=prefix)  # fmt: skip
    central = ScaledOutCentral(
        data_dir, database_url=prefix, args=base, orchestrator_args=["--workers", str(workers)]
    )
    await asyncio.to_thread(central.start)
    try:
        connector = aiohttp.TCPConnector(limit=max(args.concurrency, args.scan_concurrency) + 10)
        async with aiohttp.ClientSession(connector=connector) as session:
            api = flash_sale.Api(session, central.url)
            seat_ids, _event_id, tokens = await flash_sale.setup(api, otp_file, args)
            _, login, _ = await api.setup_call(
                "POST",
                "/api/auth/login",
                body={"email": "admin@bench.test", "password": flash_sale.PASSWORD},
            )
            admin = login["data"]["access_token"]
            gates = []
            for i in range(args.gates):
                _, gate, _ = await api.setup_call(
                    "POST", "/api/admin/gates", admin, {"hall_id": "HALL-A", "name": f"G{i}"}
                )
                gates.append(gate["data"]["device_token"])
            load = os.getloadavg()[0]
            ticks_before = machine_ticks()
            race = await flash_sale.race(api, seat_ids, tokens, args)
            sold = sorted(set(race["paid_seats"]))
            ring = KeyRing.load_or_create(data_dir)
            scans = await scan_load(
                session,
                central.url,
                ring,
                gates,
                sold,
                concurrency=args.scan_concurrency,
                seconds=args.scan_seconds,
            )
            steal = steal_share(ticks_before, machine_ticks())
        await asyncio.sleep(2)  # the entry-log outbox drains in the background
        checks = await invariants(prefix, scans.pop("success_by_seat"))
        counts = race["counts"]
        return {
            "orchestrator_processes": workers,
            "purchases_per_s": round(counts["paid"] / race["elapsed"], 1),
            "paid": counts["paid"],
            "verified_per_s": scans["verified_per_s"],
            "verify_p50_ms": scans["p50_ms"],
            "verify_p99_ms": scans["p99_ms"],
            "scan_results": scans["results"],
            "scan_errors": scans["errors"],
            "invariants": checks,
            "loadavg": [round(load, 2), round(os.getloadavg()[0], 2)],
            # the share of the machine's CPU time the hypervisor took away (race and scans)
            "steal": steal,
        }
    finally:
        await asyncio.to_thread(central.stop)
        from central.db import drop_postgres_database

        for service in SERVICES:
            await drop_postgres_database(f"{prefix}_{service}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for workers in (1, 2):
        row = await one_run(args, workers)
        runs.append(row)
        print(
            f"{workers} orchestrator process(es): purchases {row['purchases_per_s']}/s, "
            f"verifications {row['verified_per_s']}/s (p50 {row['verify_p50_ms']} ms, p99 "
            f"{row['verify_p99_ms']} ms), invariants {row['invariants']}, load {row['loadavg']}, "
            f"stolen {row['steal']}",
            flush=True,
        )
    one, two = runs

    def ratio(key: str) -> float | None:
        return round(two[key] / one[key], 2) if one[key] else None

    summary = {
        "bench": "scale_out",
        "buyers": args.buyers,
        "seats": args.seats,
        "runs": runs,
        "purchases_ratio": ratio("purchases_per_s"),
        "verified_ratio": ratio("verified_per_s"),
        "violations": sum(sum(r["invariants"].values()) for r in runs),
    }
    print(f"two/one: purchases {summary['purchases_ratio']}×, verifications "
          f"{summary['verified_ratio']}×; invariant violations: {summary['violations']}")  # fmt: skip
    return summary


# what --quick sets; tests/docs/quick_runs.py reads it: documented commands that differ only in
# these flags are the same run under --quick, so the docs test runs them once
QUICK = {
    "buyers": 12,
    "seats": 8,
    "concurrency": 8,
    "gates": 3,
    "scan_concurrency": 8,
    "scan_seconds": 2.0,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default="postgresql+asyncpg://postgres@127.0.0.1/scale",
        help="PostgreSQL URL prefix; each run adds a fresh suffix",
    )
    parser.add_argument("--buyers", type=int, default=600)
    parser.add_argument("--seats", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--abandon", type=float, default=0.0)
    parser.add_argument("--hold-ttl", type=int, default=30)
    parser.add_argument("--gates", type=int, default=20)
    parser.add_argument("--scan-concurrency", type=int, default=64)
    parser.add_argument("--scan-seconds", type=float, default=15.0)
    parser.add_argument("--json", action="store_true", help="one JSON summary line on stdout")
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds per run")
    args = parser.parse_args()
    # doors open now (they open 6 h before the start by default)
    args.event_date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    if args.quick:
        vars(args).update(QUICK)
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            summary = asyncio.run(run(args))
        print(json.dumps(summary), flush=True)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
