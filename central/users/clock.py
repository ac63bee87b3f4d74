"""Time in one place, so tests can move it (OTP and token expiry) without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from central.timeutil import as_utc, iso, utcnow

Clock = Callable[[], datetime]

__all__ = ["Clock", "as_utc", "iso", "utcnow"]
