"""The inventory process: gRPC server, hold sweeper, and an HTTP side app for /health and /metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc.aio
from aiohttp import web
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from central.config import Settings
from central.db import make_engine, migrate, ping
from central.direct_sql import DirectPool
from central.inventory.interceptor import CallInterceptor
from central.inventory.schema import MIGRATIONS
from central.inventory.servicer import InventoryServicer
from central.inventory.store import InventoryStore, now_ms
from central.inventory.sweeper import HoldSweeper, ReleasedCallback
from central.rounds import Rounds
from central.web import health_checks_key, make_app, registry_key
from proto import inventory_pb2_grpc

log = logging.getLogger(__name__)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class InventoryServer:
    def __init__(
        self,
        settings: Settings,
        *,
        on_released: ReleasedCallback | None = None,
        clock: Callable[[], int] = now_ms,
    ):
        self.settings = settings
        # Called with the (seat_id, hold_id) pairs the sweeper released; may be set after start.
        self.on_released = on_released
        self._clock = clock
        self.engine: AsyncEngine | None = None
        self.store: InventoryStore | None = None
        self._grpc: grpc.aio.Server | None = None
        self._sweeper_task: asyncio.Task[None] | None = None
        self._sweeper_rounds = Rounds("inventory hold sweeper")
        self._runner: web.AppRunner | None = None
        self.app = make_app("inventory", internal_token=None)
        registry = self.app[registry_key]
        self._calls = Counter(
            "inventory_rpc_total", "Inventory RPCs", ["method", "code"], registry=registry
        )
        self._latency = Histogram(
            "inventory_rpc_seconds", "Inventory RPC latency", ["method"], registry=registry
        )
        self.app[health_checks_key]["database"] = self._check_database

    async def _check_database(self) -> None:
        if self.engine is None:
            raise RuntimeError("not started")
        await ping(self.engine)

    def _observe(self, method: str, code: str, seconds: float) -> None:
        self._calls.labels(method, code).inc()
        self._latency.labels(method).observe(seconds)

    async def start(self, host: str, port: int) -> int:
        """Migrate, serve gRPC on host:port (0 picks a free port) and start the sweeper."""
        self.engine = await make_engine(self.settings.database_url_for("inventory"))
        await migrate(self.engine, MIGRATIONS)
        self.store = InventoryStore(self.engine, self._clock)
        server = grpc.aio.server(
            interceptors=[CallInterceptor(self.settings.secret("internal_token"), self._observe)]
        )
        inventory_pb2_grpc.add_InventoryServicer_to_server(InventoryServicer(self.store), server)
        bound = server.add_insecure_port(_address(host, port))
        await server.start()
        self._grpc = server
        sweeper = HoldSweeper(self.store, self.settings.sweep_interval, lambda: self.on_released)
        self._sweeper_task = asyncio.create_task(
            sweeper.run(self._sweeper_rounds), name="inventory-hold-sweeper"
        )
        log.info("inventory gRPC listening on %s", _address(host, bound))
        return bound

    async def start_http(self, host: str, port: int) -> int:
        """Serve /health and /metrics on host:port (0 picks a free port); the bound port."""
        runner = web.AppRunner(self.app)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = int(runner.addresses[0][1])
        log.info("inventory health/metrics on %s", _address(host, bound))
        return bound

    async def stop(self, grace: float | None = None) -> None:
        if self._sweeper_task is not None:
            await self._sweeper_rounds.stop(self._sweeper_task, grace=5.0)
            self._sweeper_task = None
        if self._grpc is not None:
            await self._grpc.stop(grace)
            self._grpc = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.engine is not None:
            await DirectPool.close_for(self.engine)
            await self.engine.dispose()
            self.engine = None
