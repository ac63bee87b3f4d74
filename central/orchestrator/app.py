"""The orchestrator's aiohttp application: the public API of api-contract.md."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from aiohttp import web

from central.clients.users_feed import UsersFeedOverHttp
from central.config import Settings
from central.orchestrator import cors
from central.orchestrator.access_tokens import AccessTokens
from central.orchestrator.auth import AddressRateLimiter, access_tokens_key
from central.orchestrator.backends import Backends
from central.orchestrator.fresh_cache import FreshCache
from central.orchestrator.keys import (
    backends_key,
    gate_cache_key,
    login_limiter_key,
    runtime_key,
    settings_key,
)
from central.orchestrator.openapi import api_docs, openapi_json
from central.orchestrator.routes import (
    accounts,
    admin,
    admin_views,
    dashboard,
    devices,
    events,
    gate,
    mine,
    money,
    pages,
    purchase,
    qr_image,
    refunds,
    tickets,
    transfer,
)
from central.orchestrator.routes.gate import GATE_CACHE_TTL
from central.orchestrator.runtime import Runtime
from central.web import health_checks_key, make_app

SERVER_TIME_HEADER = "X-Server-Time"


async def add_server_time(request: web.Request, response: web.StreamResponse) -> None:
    """Central's clock on every answer (unix seconds, millisecond precision): gates keep their offset to it and judge the
    60-second token window in central's time even without a real-time clock."""
    response.headers[SERVER_TIME_HEADER] = f"{time.time():.3f}"


def create_app(settings: Settings, backends: Backends) -> web.Application:
    app = make_app(
        "orchestrator",
        internal_token=None,
        client_max_size=1024 * 1024,
        body_timeout=settings.body_timeout,
        # The public port: /metrics only for the operator's networks (the contract allows it).
        metrics_networks=settings.metrics_network_list(),
    )
    app[settings_key] = settings
    app[backends_key] = backends
    app[login_limiter_key] = AddressRateLimiter(settings.auth_rate_limit)
    app[gate_cache_key] = FreshCache(GATE_CACHE_TTL)
    for module in (
        accounts,
        events,
        admin,
        purchase,
        transfer,
        tickets,
        devices,
        gate,
        dashboard,
        pages,
    ):
        app.router.add_routes(module.routes)
    for module in (mine, admin_views, qr_image):
        app.router.add_routes(module.routes)
    for module in (money, refunds):  # money in and out (issue 14)
        app.router.add_routes(module.routes)
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/docs", api_docs)
    app.router.add_get("/api/docs/{name}", api_docs)
    app.on_response_prepare.append(add_server_time)
    cors.install(app, settings.cors_origin)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await backends.start()
        tokens = AccessTokens(UsersFeedOverHttp(backends.users), settings.secret("jwt_secret"))
        await tokens.start()
        app[access_tokens_key] = tokens
        runtime = await Runtime.open(settings, backends)
        app[runtime_key] = runtime
        yield
        await runtime.close()
        await tokens.close()
        await backends.close()

    app.cleanup_ctx.append(lifecycle)

    async def check_inventory() -> None:
        # Any answer from a valid call proves inventory and its database are up.
        await backends.inventory.seat_counts(["00000000-0000-4000-8000-000000000000"], timeout=1)

    checks = app[health_checks_key]
    checks["users"] = backends.users.health
    checks["orders"] = backends.orders.health
    checks["events"] = backends.events.health
    checks["inventory"] = check_inventory
    return app
