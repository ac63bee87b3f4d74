"""Load shedding for the scan path. Past its capacity a verification queue only grows: every
request waits, then misses its deadline, and throughput collapses for everyone. Refusing at once
with 503 instead keeps the admitted scans fast, and a gate that gets 503 decides offline at once —
which is exactly what it is built to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from central.errors import ApiError


class InFlightLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.shed = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.in_flight >= self.limit:
            self.shed += 1
            raise ApiError("SERVICE_UNAVAILABLE", "central is at capacity; decide offline")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
