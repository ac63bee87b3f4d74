"""Typed application keys shared by the orchestrator's route modules."""

from __future__ import annotations

from aiohttp import web

from central.config import Settings
from central.orchestrator.auth import AddressRateLimiter
from central.orchestrator.backends import Backends
from central.orchestrator.fresh_cache import FreshCache

backends_key = web.AppKey("backends", Backends)
settings_key = web.AppKey("settings", Settings)
login_limiter_key = web.AppKey("login_limiter", AddressRateLimiter)
# Gates by device token (routes/gate.py): a revocation is seen within its ttl.
gate_cache_key = web.AppKey("gate_cache", FreshCache)

# Set by the app's lifecycle once the orchestrator's database is open.
runtime_key = web.AppKey("runtime", object)
