"""Doors stay open under faults: the whole system scaled out on a private PostgreSQL cluster and a
private RabbitMQ node (never the machine's shared ones), three real gate agents, a mixed load of
purchases, transfers, top-ups (demo provider) and verifications, while in turn PostgreSQL restarts, RabbitMQ stops and
starts, each atomic service and the orchestrator is SIGKILLed and restarted, and a gate's network
is cut. After each fault and at the end every invariant must have zero violations.

The bounded CI form of bench/chaos.py (same code, short windows). It asserts invariants and that
the faults and the load really happened — never throughput. It runs where the PostgreSQL and
RabbitMQ integration tests run (their markers), on instances of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import needs_postgres, needs_rabbitmq

from bench.chaos_lab.faults import missing_binaries
from bench.chaos_lab.run import FAULTS, Plan, format_report, run_chaos

needs_binaries = pytest.mark.skipif(
    bool(missing_binaries()),
    reason=f"private PostgreSQL/RabbitMQ need their binaries: missing {missing_binaries()}",
)


@needs_postgres
@needs_rabbitmq
@needs_binaries
@pytest.mark.timeout(600)
async def test_every_invariant_holds_through_every_fault(tmp_path: Path) -> None:
    printed: list[str] = []
    reports = await run_chaos(tmp_path / "chaos", Plan(), out=printed.append)
    print("\n".join(printed))  # the tables, in the test's output

    assert [r.name for r in reports[:-1]] == [f.name for f in FAULTS]
    for report in reports:
        assert len(report.checks) == 9, format_report(report)
        for check in report.checks:
            assert check.violations == 0, format_report(report)

    for report in reports[:-1]:
        # the fault happened under load: operations succeeded before it, and purchases again
        # after it
        assert report.down_s > 0
        assert sum(report.rates["before"].values()) > 0, format_report(report)
        assert report.recover_s is not None, format_report(report)
    killed = [r for r in reports if r.name.startswith("SIGKILL")]
    assert any(r.errors for r in killed), "no kill was ever visible to a client"

    totals = reports[-1].totals
    assert totals["purchases"] > 0 and totals["transfers"] > 0
    assert totals["top-ups"] > 0, totals  # paid, so the credits check counted them
    # every gate judged scans; the one cut off after the first sales decided offline (and its
    # uploads are in the end-of-run checks), the one whose network was cut did too
    for gate in ("north", "south", "east"):
        assert totals[f"gate {gate} scans"] > 0, totals
    assert totals["gate east offline"] > 0, totals
    assert totals["gate south offline"] > 0, totals
    assert sum(totals[f"gate {g} admitted"] for g in ("north", "south", "east")) > 0
