"""Chaos run: the whole system scaled out (one process per central service on a private
PostgreSQL cluster and a private RabbitMQ node, three real gate agents — one behind a proxy that is
cut and restored, one offline for the whole run) under a mixed load of purchases, transfers and
gate verifications, while in turn PostgreSQL restarts, RabbitMQ stops and starts, each atomic
service and the orchestrator is SIGKILLed and restarted, and a gate's network is cut.

Prints one table per fault: successful operations per second before, during and after it, the
client-visible errors by kind, how long the fault lasted and how soon purchases (or the cut
gate's uploads) came back, and every invariant with its count of violations. Exits 1 when any
invariant was violated.

Run: .venv/bin/python bench/chaos.py            # longer windows (about 6-8 minutes)
     .venv/bin/python bench/chaos.py --quick    # the CI-sized form (about 3-4 minutes)
Top-ups (POST /api/credits/topup) are not part of the load: that route does not exist yet.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere in the checkout

from bench.chaos_lab.run import FAULTS, Plan, run_chaos  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short CI-sized windows")
    parser.add_argument("--before", type=float, help="seconds of load before each fault")
    parser.add_argument("--outage", type=float, help="seconds each fault keeps its part down")
    parser.add_argument("--after", type=float, help="seconds of load after each fault")
    parser.add_argument(
        "--fault", action="append", choices=[f.name for f in FAULTS], help="only these faults"
    )
    parser.add_argument("--keep", type=Path, help="run in this folder and keep its logs")
    args = parser.parse_args()
    plan = Plan() if args.quick else Plan(before_s=10, outage_s=5, after_s=10, presale=20, rows=80)
    if args.before is not None:
        plan.before_s = args.before
    if args.outage is not None:
        plan.outage_s = args.outage
    if args.after is not None:
        plan.after_s = args.after
    if args.fault:
        plan.faults = args.fault
    print(
        f"chaos run: before {plan.before_s} s, outage {plan.outage_s} s, after {plan.after_s} s; "
        f"faults: {', '.join(plan.faults)}",
        flush=True,
    )
    if args.keep:
        # each run in a folder of its own inside --keep: an earlier run's logs stay, and its
        # gates' folders never collide with this run's
        args.keep.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=args.keep))
        print(f"keeping this run's data and logs in {run_dir}", flush=True)
        reports = asyncio.run(run_chaos(run_dir, plan, out=lambda s: print(s, flush=True)))
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            reports = asyncio.run(
                run_chaos(Path(tmp), plan, out=lambda s: print(s, flush=True), throwaway=True)
            )
    total = sum(r.violations for r in reports)
    print(f"\ninvariant violations over the run: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
