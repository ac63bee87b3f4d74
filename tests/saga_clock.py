"""Letting saga leases lapse without waiting: the runner's clock moved forward by the test."""

from __future__ import annotations

import time

from cluster import Cluster

# Longer than any test: only the moved clock ends a lease, never the time a test takes.
LONG_LEASE = 600.0


class ShiftedClock:
    """Real unix time plus an offset the test moves (deadlines set from real time still hold)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


async def lapse_leases(c: Cluster) -> None:
    """Every saga lease the orchestrator holds now runs out, and a recovery pass runs."""
    runner = c.runtime().runner
    if not isinstance(runner.clock, ShiftedClock):
        runner.clock = ShiftedClock()
    runner.clock.advance(runner.lease_seconds + 1)
    await runner.recover_once()
