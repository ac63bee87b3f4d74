"""A gate told to stop (SIGTERM, as systemd does) stops, even while a staff screen is watching its
dashboard: the open WebSocket is closed with "going away" (the page shows the screen is stale and
reconnects when the gate is back), not waited for until the service manager kills the process."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from tests.gate_agent.central_proc import free_port
from tests.gate_agent.gate_proc import PIN, GateProc

# a bound on the behaviour, far above a clean stop (well under a second) and far below the
# 20 s the test helper waits before it kills
STOP_BOUND_S = 10.0


async def test_sigterm_with_a_dashboard_socket_open_stops_cleanly(tmp_path: Path) -> None:
    # no central needed: a gate that never reached it still serves its dashboard
    gate = GateProc(f"http://127.0.0.1:{free_port()}", "tok", tmp_path)
    gate.start()
    try:
        assert gate.proc is not None
        base = f"http://127.0.0.1:{gate.port}"
        jar = aiohttp.CookieJar(unsafe=True)  # keeps the session cookie of an IP address
        async with aiohttp.ClientSession(headers={"Origin": base}, cookie_jar=jar) as staff:
            assert (await staff.post(f"{base}/api/login", json={"pin": PIN})).status == 200
            ws = await staff.ws_connect(f"{base}/ws")
            assert (await ws.receive_json(timeout=10))["type"] == "status"
            gate.proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            # the screen is told the gate is going away
            closing = await ws.receive(timeout=STOP_BOUND_S)
            while closing.type == aiohttp.WSMsgType.TEXT:  # a status push may come first
                closing = await ws.receive(timeout=STOP_BOUND_S)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
            code = await asyncio.to_thread(gate.proc.wait, STOP_BOUND_S)
        assert code == 0, gate.log_tail()
        assert time.monotonic() - started < STOP_BOUND_S
        assert '"msg":"gate stopped"' in gate.log_tail()
    finally:
        gate.kill()
