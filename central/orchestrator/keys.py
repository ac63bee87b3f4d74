"""Typed application keys shared by the orchestrator's route modules."""

from __future__ import annotations

from aiohttp import web

from central.config import Settings
from central.orchestrator.auth import AddressRateLimiter
from central.orchestrator.backends import Backends

backends_key = web.AppKey("backends", Backends)
settings_key = web.AppKey("settings", Settings)
login_limiter_key = web.AppKey("login_limiter", AddressRateLimiter)

# Set by the app's lifecycle once the orchestrator's database is open.
runtime_key = web.AppKey("runtime", object)
