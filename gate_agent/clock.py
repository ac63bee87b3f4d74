"""Central's time on the gate: a Pi has no real-time clock and may boot minutes off, so every
exchange with central measures the offset and every 60-second judgement uses central's time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

logger = logging.getLogger(__name__)


def _parse_instant(value: Any) -> float | None:
    """Unix seconds from a number or an ISO-8601 text; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def server_time_of(headers: Mapping[str, str], body: Any) -> tuple[float, float] | None:
    """(central's time, its resolution in s) from an answer, most precise source first:
    data.server_time, then X-Server-Time, then the HTTP Date header (whole seconds)."""
    data = body.get("data") if isinstance(body, dict) else None
    for candidate in (
        data.get("server_time") if isinstance(data, dict) else None,
        body.get("server_time") if isinstance(body, dict) else None,
        headers.get("x-server-time"),
    ):
        instant = _parse_instant(candidate)
        if instant is not None:
            return instant, 0.0
    date = headers.get("date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp(), 1.0
        except (TypeError, ValueError):
            return None
    return None


class CentralClock:
    """offset = central's time - this gate's clock, from the last exchange (or unknown)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self._offset: float | None = None
        self._measured_at: float | None = None
        self._lock = threading.Lock()

    @property
    def offset(self) -> float | None:
        return self._offset

    @property
    def known(self) -> bool:
        return self._offset is not None

    def now(self) -> float:
        """Central's time now as best known; the gate's own clock before the first exchange."""
        return self.wall() + (self._offset or 0.0)

    def to_central(self, wall_instant: float) -> float:
        return wall_instant + (self._offset or 0.0)

    def observe(self, sent: float, received: float, server_time: float, resolution: float) -> None:
        """Central stamped its answer somewhere between sent and received (gate clock). A Date
        header is truncated to the second, so its middle is half a second later."""
        midpoint = (sent + received) / 2
        offset = server_time + resolution / 2 - midpoint
        with self._lock:
            previous = self._offset
            self._offset = offset
            self._measured_at = received
        if previous is None or abs(previous - offset) > 1.0:
            logger.info(
                "clock offset to central measured",
                extra={"fields": {"offset_s": round(offset, 3), "rtt_ms": (received - sent) * 1e3}},
            )

    def status(self) -> dict[str, Any]:
        return {
            "offset_s": None if self._offset is None else round(self._offset, 3),
            "measured_at": self._measured_at,
        }
