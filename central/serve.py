"""`python -m central serve`: every central service in this process (embedded default), or one
service alone (`--service NAME`) for scaling out. Internal services listen on loopback."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from central.config import ConfigError, Settings

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def run_event_loop(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run on uvloop when it is installed (its loop spends about half the CPU of the
    standard one per socket operation), else on the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro_factory())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro_factory())


async def run_app(
    stack: AsyncExitStack,
    app: web.Application,
    host: str,
    port: int,
    ssl_ctx: Any = None,
    *,
    reuse_port: bool = False,
) -> int:
    """Start an aiohttp app on host:port (0 = a free port); answer the bound port. reuse_port:
    share the port with the other orchestrator workers (SO_REUSEPORT)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(
        runner, host, port, ssl_context=ssl_ctx, backlog=1024, reuse_port=reuse_port or None
    )
    await site.start()
    return int(runner.addresses[0][1])


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return ctx


@dataclass
class Addresses:
    users_url: str | None = None
    orders_url: str | None = None
    events_url: str | None = None
    inventory_addr: str | None = None
    extra: dict[str, int] = field(default_factory=dict)


async def start_atomic(
    stack: AsyncExitStack, settings: Settings, name: str, host: str, port: int, ssl_ctx: Any = None
) -> int:
    """Start one atomic service; answer its bound port."""
    if name == "inventory":
        from central.inventory.server import InventoryServer

        server = InventoryServer(settings)
        bound = await server.start(host, port)
        stack.push_async_callback(server.stop, 2.0)
        # gRPC has no HTTP side: /health and /metrics get their own port (default 8104 alone).
        default_health = 8104 if settings.service == "inventory" else 0
        health_port = settings.health_port if settings.health_port is not None else default_health
        await server.start_http(host, health_port)
        return bound
    if name == "users":
        from central.users.app import create_app as users_app

        return await run_app(stack, users_app(settings), host, port, ssl_ctx)
    if name == "orders":
        from central.orders.app import create_app as orders_app

        return await run_app(stack, orders_app(settings), host, port, ssl_ctx)
    if name == "events":
        from central.events.app import create_app as events_app

        return await run_app(stack, events_app(settings), host, port, ssl_ctx)
    raise ConfigError(f"--service: unknown service {name!r}")


async def start_atomic_services(stack: AsyncExitStack, settings: Settings) -> Addresses:
    """All four atomic services on free loopback ports."""
    ports = {}
    for name in ("inventory", "users", "orders", "events"):
        ports[name] = await start_atomic(stack, settings, name, LOOPBACK, 0)
    return Addresses(
        users_url=f"http://{LOOPBACK}:{ports['users']}",
        orders_url=f"http://{LOOPBACK}:{ports['orders']}",
        events_url=f"http://{LOOPBACK}:{ports['events']}",
        inventory_addr=f"{LOOPBACK}:{ports['inventory']}",
    )


def configured_addresses(settings: Settings) -> Addresses:
    missing = [
        flag
        for flag, value in (
            ("--users-url", settings.users_url),
            ("--orders-url", settings.orders_url),
            ("--events-url", settings.events_url),
            ("--inventory-addr", settings.inventory_addr),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"{missing[0]}: required when the orchestrator runs alone")
    return Addresses(
        users_url=settings.users_url,
        orders_url=settings.orders_url,
        events_url=settings.events_url,
        inventory_addr=settings.inventory_addr,
    )


def make_backends(settings: Settings, addresses: Addresses) -> Any:
    from central.orchestrator.backends import Backends

    assert addresses.users_url and addresses.orders_url and addresses.events_url
    assert addresses.inventory_addr
    return Backends.from_addresses(
        settings,
        users_url=addresses.users_url,
        orders_url=addresses.orders_url,
        events_url=addresses.events_url,
        inventory_addr=addresses.inventory_addr,
    )


async def start_orchestrator(
    stack: AsyncExitStack, settings: Settings, addresses: Addresses, *, reuse_port: bool = False
) -> tuple[int, Any, Any]:
    from central.orchestrator.app import create_app

    backends = make_backends(settings, addresses)
    app = create_app(settings, backends)
    port = await run_app(
        stack,
        app,
        settings.host,
        settings.public_port(),
        tls_context(settings),
        reuse_port=reuse_port,
    )
    return port, backends, app


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def serve_orchestrator_worker(settings: Settings, addresses: Addresses, ready: Any) -> None:
    """One worker of `serve --workers N` (central/workers.py): the orchestrator alone on the
    shared port, talking to the atomic services at addresses."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with AsyncExitStack() as stack:
        await start_orchestrator(stack, settings, addresses, reuse_port=True)
        ready.set()
        await stop.wait()


async def seed_sample(settings: Settings, addresses: Addresses) -> None:
    from central.sample import seed_sample_event

    backends = make_backends(settings, addresses)
    await backends.start()
    try:
        await seed_sample_event(backends)
    finally:
        await backends.close()


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with AsyncExitStack() as stack:
        scheme = "https" if settings.tls_cert else "http"
        pool = None
        if settings.service in (None, "orchestrator"):
            if settings.service is None:
                addresses = await start_atomic_services(stack, settings)
            else:
                addresses = configured_addresses(settings)
            if settings.seed_sample:
                # before the public port opens: whoever sees it answer sees the sample event
                await seed_sample(settings, addresses)
            workers = settings.worker_count()
            if workers == 1:
                # one process does it all: no extra hop between the orchestrator and the rest
                port, _backends, _app = await start_orchestrator(stack, settings, addresses)
            else:
                from central.workers import WorkerPool

                pool = WorkerPool(settings, addresses, workers)
                stack.push_async_callback(pool.close)
                port = await pool.start()
            log.info(
                "serving",
                extra={"fields": {"url": f"{scheme}://{settings.host}:{port}", "port": port}},
            )
            if sys.stdout.isatty():  # a person at a terminal, not a service manager or a test
                from central.banner import banner

                print(banner(settings, f"{scheme}://{settings.host}:{port}"), flush=True)
        else:
            port = await start_atomic(
                stack,
                settings,
                settings.service,
                settings.host,
                settings.public_port(),
                tls_context(settings),
            )
            log.info(
                "serving",
                extra={"fields": {"service": settings.service, "port": port}},
            )
        if pool is not None:
            await pool.watch(stop)  # raises WorkerDied when a worker exits on its own
        else:
            await stop.wait()
        log.info("stopping")
