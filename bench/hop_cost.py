"""What one hop between two processes costs the server's CPU, with nothing else on it: the same
100-byte request answered by (a) a grpc.aio unary method, as inventory answers the orchestrator,
and (b) an aiohttp handler, as the users, orders and events services answer it. Each server runs
in a child process on uvloop, as `serve` runs them; this process is the client. Measured at 1 call
in flight (a lightly loaded gate: every call wakes the server alone) and at 8 (calls share the
server's wake-ups). CPU is the child's own, from /proc, so the client's cost is not in it.

    .venv/bin/python bench/hop_cost.py
    .venv/bin/python bench/hop_cost.py --quick      # a few hundred calls each

Prints one JSON line: microseconds of server CPU per call for each server and concurrency, and
the gRPC-to-HTTP ratio at each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from proc_cpu import process_cpu_seconds  # noqa: E402

from central.progress import Progress  # noqa: E402

progress = Progress("hop_cost")
BODY = b"x" * 100
SERVICE, METHOD = "bench.Hop", "Echo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----- the servers (run in the child) -----


async def _grpc_server(port: int) -> None:
    import grpc
    import grpc.aio

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(echo)}
            )
        ]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _http_server(port: int) -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def serve(kind: str, port: int) -> None:
    import uvloop

    uvloop.run(_grpc_server(port) if kind == "grpc" else _http_server(port))


# ----- the client (this process) -----


async def _grpc_caller(
    port: int,
) -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[None]]]:
    import grpc.aio

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(f"/{SERVICE}/{METHOD}")

    async def one() -> object:
        return await call(BODY, timeout=10)

    return one, channel.close


async def _http_caller(
    port: int,
) -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession()
    url = f"http://127.0.0.1:{port}/echo"

    async def one() -> object:
        async with session.post(url, data=BODY) as answer:
            return await answer.read()

    return one, session.close


async def _client_cpu(child_pid: int, kind: str, port: int, calls: int, in_flight: int) -> float:
    make = _grpc_caller if kind == "grpc" else _http_caller
    one, close = await make(port)
    try:
        for _ in range(100):  # until it answers
            try:
                await one()
                break
            except Exception:
                await asyncio.sleep(0.1)
        for _ in range(200):  # warm up
            await one()
        left = calls
        before = process_cpu_seconds(child_pid)

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return (process_cpu_seconds(child_pid) - before) / calls * 1e6
    finally:
        await close()


def measure(kind: str, calls: int, in_flight: int) -> float:
    """Microseconds of the server process's CPU per call."""
    port = _free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)])
    try:
        return asyncio.run(_client_cpu(child.pid, kind, port, calls, in_flight))
    finally:
        child.kill()
        child.wait()


# what --quick sets; tests/docs/quick_runs.py reads it
QUICK = {"calls": 300, "rounds": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements; the best is kept")
    parser.add_argument("--quick", action="store_true", help="a few hundred calls each")
    parser.add_argument("--serve", choices=("grpc", "http"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.quick:
        vars(args).update(QUICK)
    result: dict[str, object] = {"bench": "hop_cost", "calls": args.calls}
    for in_flight in (1, 8):
        best: dict[str, float] = {}
        for kind in ("grpc", "http"):
            for r in range(args.rounds):
                progress.step(f"{kind}, {in_flight} in flight, round {r + 1} of {args.rounds}")
                started = time.perf_counter()
                us = measure(kind, args.calls, in_flight)
                progress.note(f"{us:.0f} us per call ({time.perf_counter() - started:.1f} s)")
                best[kind] = min(best.get(kind, us), us)
        result[f"server_cpu_us_per_call_in_flight_{in_flight}"] = {
            k: round(v) for k, v in best.items()
        }
        result[f"ratio_grpc_to_http_in_flight_{in_flight}"] = round(best["grpc"] / best["http"], 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
