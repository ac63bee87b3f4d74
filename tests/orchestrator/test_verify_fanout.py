"""The lookups run concurrently and each has a deadline. A real delaying HTTP proxy on loopback sits
between a second orchestrator and the events service of a running cluster (which authenticates the
gate and answers the event); the seat comes from inventory over gRPC."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cluster import Cluster, running_cluster
from verify_support import add_gate, buy, make_event, qr, seat

from central.config import Settings
from central.serve import Addresses, start_orchestrator

DELAY = 0.3
EVENT_READS = "/events/"  # the event lookup, not the gate's authentication (/gates/...)


async def delaying_proxy(
    stack: AsyncExitStack,
    target: str,
    delay: float,
    only: str = "/",
    delaying: asyncio.Event | None = None,
) -> str:
    """Forward every request to ``target``, those whose path starts with ``only`` after ``delay``
    seconds (setting ``delaying`` as one starts waiting); answer the proxy's URL."""
    session = aiohttp.ClientSession()
    stack.push_async_callback(session.close)

    async def forward(request: web.Request) -> web.Response:
        if request.path.startswith(only):
            if delaying is not None:
                delaying.set()
            await asyncio.sleep(delay)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with session.request(
            request.method, target + request.path_qs, data=await request.read(), headers=headers
        ) as resp:
            return web.Response(
                status=resp.status, body=await resp.read(), content_type=resp.content_type
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}"


async def orchestrator_via(
    stack: AsyncExitStack, c: Cluster, settings: Settings, **urls: str
) -> str:
    """A second orchestrator on the cluster's services, some of them reached through ``urls``."""
    addresses = Addresses(
        users_url=urls.get("users_url", c.backends.users.base_url),
        orders_url=urls.get("orders_url", c.backends.orders.base_url),
        events_url=urls.get("events_url", c.backends.events.base_url),
        inventory_addr=c.backends.inventory.address,
    )
    port = (await start_orchestrator(stack, settings, addresses))[0]
    return f"http://127.0.0.1:{port}"


async def timed_scan(url: str, gate: dict[str, Any], payload: str) -> tuple[float, int, Any]:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            url + "/api/gate/verify",
            json={"qr_payload": payload, "scan_id": str(uuid.uuid4())},
            headers={"Authorization": f"Bearer {gate['device_token']}"},
        ) as resp:
            body = await resp.json()
        return time.perf_counter() - started, resp.status, body


async def test_slow_services_are_waited_for_once_not_in_sum(tmp_path: Path) -> None:
    """The events service (which authenticates the gate and answers the event) 300 ms slower:
    the gate's authentication and the event lookup one after the other would be ≥ 600 ms; the
    verdict takes about 300 ms."""
    async with running_cluster(tmp_path) as c, AsyncExitStack() as stack:
        event = await make_event(c)
        gate = await add_gate(c, event["admin"]["token"])
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        slow_events = await delaying_proxy(stack, c.backends.events.base_url, DELAY)
        url = await orchestrator_via(stack, c, c.settings, events_url=slow_events)
        elapsed, status, body = await timed_scan(url, gate, await qr(c, buyer["token"], seat_id))
        assert status == 200 and body["data"]["result"] == "SUCCESS", body
        # one after the other it would be at least 2 x DELAY (gate auth, event)
        assert DELAY <= elapsed < 1.7 * DELAY, f"verdict took {elapsed * 1000:.0f} ms"


async def test_a_service_past_its_deadline_is_service_unavailable(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c, AsyncExitStack() as stack:
        event = await make_event(c)
        gate = await add_gate(c, event["admin"]["token"])
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        hung_events = await delaying_proxy(stack, c.backends.events.base_url, 30, EVENT_READS)
        settings = dataclasses.replace(c.settings, verify_timeout=0.5)
        url = await orchestrator_via(stack, c, settings, events_url=hung_events)
        elapsed, status, body = await timed_scan(url, gate, await qr(c, buyer["token"], seat_id))
        assert (status, body["error_code"]) == (503, "SERVICE_UNAVAILABLE"), body
        assert elapsed < 2.0, f"took {elapsed:.1f} s"
        assert (await seat(c, seat_id)).status == "SOLD"
        # The same orchestrator still decides what needs no event: a forged token is INVALID.
        elapsed, status, body = await timed_scan(url, gate, "TR1:forged")
        assert status == 200 and body["data"]["result"] == "INVALID"


async def test_past_capacity_a_scan_is_refused_at_once(tmp_path: Path) -> None:
    """With room for one scan in flight, a second scan arriving meanwhile gets 503 at once (the gate
    decides offline) instead of queueing into its deadline; the first completes normally."""
    async with running_cluster(tmp_path) as c, AsyncExitStack() as stack:
        event = await make_event(c)
        gate = await add_gate(c, event["admin"]["token"])
        first, second = event["seat_ids"][:2]
        buyer = await buy(c, first)
        other = await buy(c, second)
        waiting = asyncio.Event()
        slow_events = await delaying_proxy(
            stack, c.backends.events.base_url, 1.0, EVENT_READS, waiting
        )
        settings = dataclasses.replace(c.settings, verify_timeout=5.0, verify_concurrency=1)
        url = await orchestrator_via(stack, c, settings, events_url=slow_events)
        payloads = [await qr(c, buyer["token"], first), await qr(c, other["token"], second)]
        slow = asyncio.create_task(timed_scan(url, gate, payloads[0]))
        await asyncio.wait_for(waiting.wait(), 10)  # the first scan waits on the event lookup
        elapsed, status, body = await timed_scan(url, gate, payloads[1])
        assert (status, body["error_code"]) == (503, "SERVICE_UNAVAILABLE"), body
        assert elapsed < 0.5, f"refusal took {elapsed * 1000:.0f} ms"
        _, status, body = await slow
        assert status == 200 and body["data"]["result"] == "SUCCESS", body
        assert (await seat(c, second)).status == "SOLD"  # the refused scan changed nothing
