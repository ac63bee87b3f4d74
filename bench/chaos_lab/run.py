"""One chaos run: the system scaled out on private infrastructure, the mixed load, and the faults
in turn. Around each fault the load's successes are counted before, during and after it; then the
load pauses, the system settles, and every invariant is checked. The run answers one report per
fault and prints it as a table."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos_lab.invariants import Check, check_all, gate_scans, settle
from bench.chaos_lab.load import EXPECTED, PURCHASE_INTERVAL, Load
from bench.chaos_lab.system import System
from central.progress import Progress

KINDS = ("purchase", "transfer", "topup", "scan")
CUT_AT_LEAST_S = 5.0


@dataclass(frozen=True)
class Fault:
    name: str
    exercised: str
    action: Callable[[System, float], None]  # break, wait the outage, bring back (blocking)
    watch_gate: str | None = None  # the gate whose backlog upload marks the recovery


def _kill(service: str) -> Callable[[System, float], None]:
    def act(system: System, outage: float) -> None:
        system.procs[service].kill()
        time.sleep(outage)
        system.procs[service].start()

    return act


def _postgres(system: System, outage: float) -> None:
    system.pg.stop("immediate")  # no checkpoint, no goodbye to clients: a crash
    time.sleep(outage)
    system.pg.start()


def _rabbit(system: System, outage: float) -> None:
    system.rabbit.stop()
    time.sleep(outage)
    system.rabbit.start()


def _cut(system: System, outage: float) -> None:
    gate = next(g for g in system.gates if g.name == "south")
    assert gate.proxy is not None
    gate.proxy.cut()
    time.sleep(max(outage, CUT_AT_LEAST_S))  # long enough for several scans to go offline
    gate.proxy.restore()


FAULTS = [
    Fault(
        "PostgreSQL restart",
        "pg_ctl stop -m immediate, then start: every pooled connection of every service dies "
        "mid-use; sagas, the gate-scan store and the entry-log outbox must survive it",
        _postgres,
    ),
    Fault(
        "RabbitMQ stop/start",
        "the private broker stopped and started: reserves cannot publish their hold (the saga "
        "compensates), expiry falls back to the deadline sweep, the consumer reconnects",
        _rabbit,
    ),
    *(
        Fault(
            f"SIGKILL {name}",
            f"the {name} process killed without warning and started again",
            _kill(name),
        )
        for name in ("inventory", "users", "orders", "events")
    ),
    Fault(
        "SIGKILL orchestrator",
        "the orchestrator killed mid-saga and mid-scan: recovery resumes or compensates its "
        "sagas after the lease; kept entry-log rows drain after the restart",
        _kill("orchestrator"),
    ),
    Fault(
        "gate network cut",
        "the proxy between gate `south` and central drops every connection and answers none: "
        "the gate decides offline from its manifest, then uploads its backlog",
        _cut,
        watch_gate="south",
    ),
]


@dataclass
class Plan:
    before_s: float = 3.0
    outage_s: float = 2.0
    after_s: float = 4.0
    buyers: int = 6
    rows: int = 30
    seats_per_row: int = 40
    purchase_workers: int = 2
    transfer_workers: int = 1
    topup_workers: int = 1
    scan_pause: float = 0.6
    presale: int = 12
    faults: list[str] = field(default_factory=lambda: [f.name for f in FAULTS])


@dataclass
class FaultReport:
    name: str
    exercised: str
    rates: dict[str, dict[str, float]]  # phase -> kind -> per second
    errors: Counter[str]
    down_s: float
    recover_s: float | None
    checks: list[Check]
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return sum(c.violations for c in self.checks)


def rates(
    load: Load, scans: list[float], windows: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for phase, (a, b) in windows.items():
        span = max(b - a, 1e-6)
        out[phase] = {
            kind: sum(1 for t, k in load.record.successes if k == kind and a <= t < b) / span
            for kind in ("purchase", "transfer", "topup")
        }
        out[phase]["scan"] = sum(1 for t in scans if a <= t < b) / span
    return out


def offline_fallbacks(system: System, since: float, until: float, skip: set[str]) -> Counter[str]:
    """Scans a connected gate had to decide alone: central did not answer it in time."""
    found: Counter[str] = Counter()
    for gate in system.gates:
        if gate.name in skip:
            continue
        for scan in gate_scans(gate):
            if scan["mode"] == "offline" and not scan["local"] and since <= scan["at"] < until:
                found[f"gate {gate.name}:decided offline"] += 1
    return found


def format_report(r: FaultReport) -> str:
    lines = [f"== {r.name} ==", f"   exercises: {r.exercised}"]
    if r.rates:
        lines.append(f"   {'ops/s':<12}{'before':>9}{'during':>9}{'after':>9}")
        for kind in KINDS:
            row = "".join(f"{r.rates[p][kind]:>9.2f}" for p in ("before", "during", "after"))
            lines.append(f"   {kind + 's':<12}{row}")
        recovered = "not within 30 s" if r.recover_s is None else f"{r.recover_s:.1f} s"
        lines.append(f"   fault lasted {r.down_s:.1f} s; recovered {recovered} after it ended")
    faults = {k: n for k, n in r.errors.items() if k not in EXPECTED}
    expected = {k: n for k, n in r.errors.items() if k in EXPECTED}
    shown = ", ".join(f"{k} x{n}" for k, n in sorted(faults.items())) or "none"
    lines.append(f"   client-visible errors: {shown}")
    if expected:
        lines.append(
            "   expected refusals (contention): "
            + ", ".join(f"{k} x{n}" for k, n in sorted(expected.items()))
        )
    if r.totals:
        lines.append("   " + ", ".join(f"{k} {v}" for k, v in r.totals.items()))
    for check in r.checks:
        extra = f"   e.g. {check.examples}" if check.violations else ""
        lines.append(f"   {check.name:<48}{check.violations:>4}{extra}")
    return "\n".join(lines)


async def run_chaos(
    root: Path, plan: Plan, out: Callable[[str], None] = print, *, throwaway: bool = False
) -> list[FaultReport]:
    """`throwaway`: root is a temporary folder, removed with everything else should the run be
    killed (a kept folder, or a test's, stays)."""
    system = System(root, remove_root=throwaway)
    load: Load | None = None
    reports: list[FaultReport] = []
    chosen = [f for f in FAULTS if f.name in plan.faults]
    # what the run is doing, on stderr as it happens; the reports go to `out` (stdout)
    progress = Progress("chaos", total=4 + len(chosen))
    try:
        started = time.monotonic()
        progress.step("starting the services (one process each), RabbitMQ vhost and proxies")
        await system.start()
        progress.step(f"setup: a venue, {plan.buyers} buyers, three gates, the load")
        await system.setup_venue(
            buyers=plan.buyers,
            rows=plan.rows,
            seats_per_row=plan.seats_per_row,
            credits=100_000,
        )
        gates = await asyncio.gather(
            asyncio.to_thread(system.add_gate, "north", behind_proxy=False),
            asyncio.to_thread(system.add_gate, "south", behind_proxy=True),
            asyncio.to_thread(system.add_gate, "east", behind_proxy=True),
        )
        east = gates[2]
        load = Load(
            system,
            purchase_workers=plan.purchase_workers,
            transfer_workers=plan.transfer_workers,
            topup_workers=plan.topup_workers,
            scan_pause=plan.scan_pause,
        )
        await load.start()
        progress.step(
            f"load running; waiting for {plan.presale} sales before gate east goes offline"
        )
        # east goes offline for the whole run once its manifest knows the first sales
        for _ in range(600):
            if sum(1 for _, k in load.record.successes if k == "purchase") >= plan.presale:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # two manifest syncs
        assert east.proxy is not None
        east.proxy.cut()
        out(f"setup done in {time.monotonic() - started:.0f} s; gate east offline from now on")

        for fault in chosen:
            progress.step(
                f"fault {fault.name}: {plan.before_s} s load, {plan.outage_s} s down,"
                f" {plan.after_s} s after"
            )
            reports.append(await _one_fault(system, load, fault, plan))
            out(format_report(reports[-1]))

        # the offline gate comes back and uploads everything it decided alone
        progress.step("gate east back online; settling and checking every invariant")
        await load.pause()
        east.proxy.restore()
        await settle(system, timeout=90)
        checks = await check_all(system, include_pending=True)
        final = FaultReport(
            "end of run (gate east back online, everything uploaded)",
            "every invariant over the whole run, the offline gate's uploads included",
            {},
            Counter(),
            0.0,
            None,
            checks,
            totals(system, load),
        )
        reports.append(final)
        out(format_report(final))
        return reports
    finally:
        if load is not None:
            await load.stop()
        await asyncio.to_thread(system.stop)


def totals(system: System, load: Load) -> dict[str, int]:
    """What the run did in all: the volume behind the invariants' zeros."""
    done = Counter(k for _, k in load.record.successes)
    out = {
        "purchases": done["purchase"],
        "transfers": done["transfer"],
        "top-ups": done["topup"],
        "abandoned holds": done["abandoned hold"],
        "client errors": len(load.record.errors),
    }
    for gate in system.gates:
        scans = gate_scans(gate)
        out[f"gate {gate.name} scans"] = len(scans)
        out[f"gate {gate.name} offline"] = sum(1 for s in scans if s["mode"] == "offline")
        out[f"gate {gate.name} admitted"] = sum(1 for s in scans if s["result"] == "SUCCESS")
        out[f"gate {gate.name} conflicts"] = sum(1 for s in scans if s["outcome"] == "CONFLICT")
    return out


def seats_per_fault(plan: Plan) -> int:
    """Seats one fault's windows can use up at most: each purchase worker starts at most one
    purchase per PURCHASE_INTERVAL, over the windows plus the restart. Fewer seats left and "no
    purchase after the fault" would mean "sold out", not "not recovered"."""
    seconds = plan.before_s + plan.outage_s + plan.after_s + 10
    return int(plan.purchase_workers * seconds / PURCHASE_INTERVAL)


async def _one_fault(system: System, load: Load, fault: Fault, plan: Plan) -> FaultReport:
    if len(load.free_seats) < seats_per_fault(plan):
        raise RuntimeError(
            f"only {len(load.free_seats)} seats left before {fault.name!r}: the event is too "
            "small for this plan (raise Plan.rows)"
        )
    load.resume()
    before = time.time()
    await asyncio.sleep(plan.before_s)
    t0 = time.time()
    await asyncio.to_thread(fault.action, system, plan.outage_s)
    t1 = time.time()
    await asyncio.sleep(plan.after_s)
    t2 = time.time()
    recover_s: float | None = None
    if fault.watch_gate is None:
        firsts = [t for t, k in load.record.successes if k == "purchase" and t >= t1]
        if not firsts:  # give it longer than the window before calling it
            deadline = time.monotonic() + 30
            while not firsts and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                firsts = [t for t, k in load.record.successes if k == "purchase" and t >= t1]
        recover_s = min(firsts) - t1 if firsts else None
    await load.pause()
    if fault.watch_gate is not None:
        gate = next(g for g in system.gates if g.name == fault.watch_gate)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not any(s["pending"] for s in gate_scans(gate)):
                recover_s = time.time() - t1
                break
            await asyncio.sleep(0.2)
    await settle(system)
    scans = [s["at"] for g in system.gates if g.name != "east" for s in gate_scans(g)]
    windows = {"before": (before, t0), "during": (t0, t1), "after": (t1, t2)}
    errors: Counter[str] = Counter(k for t, k in load.record.errors if t0 <= t < t2)
    skip = {"east"} | ({fault.watch_gate} if fault.watch_gate else set())
    errors.update(offline_fallbacks(system, t0, t2, skip))
    return FaultReport(
        fault.name,
        fault.exercised,
        rates(load, scans, windows),
        errors,
        t1 - t0,
        recover_s,
        await check_all(system, include_pending=False),
    )
