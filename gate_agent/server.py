"""The gate's own HTTP side (api-contract "Commands"): PIN login with a session cookie,
GET /api/status, GET /api/scans, WS /ws, and a plain page listing scans. Sessions are stored
hashed in the outbox, so staff stay logged in across a restart of the agent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from gate_agent.agent import GateAgent
from gate_agent.outbox import ScanRecord, _iso

logger = logging.getLogger(__name__)

COOKIE = "gate_session"
SESSION_TTL_S = 12 * 3600
LOGIN_FAILS_PER_MIN = 10

AGENT: web.AppKey[GateAgent] = web.AppKey("agent", GateAgent)
SOCKETS: web.AppKey[set[Any]] = web.AppKey("sockets", set)
FAILS: web.AppKey[dict[str, deque[float]]] = web.AppKey("fails", dict)


def _ok(data: Any) -> web.Response:
    return web.json_response({"success": True, "data": data})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"success": False, "error_code": code, "message": message}, status=status
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _logged_in(request: web.Request) -> bool:
    token = request.cookies.get(COOKIE)
    if not token:
        return False
    return request.app[AGENT].outbox.session_valid(_hash(token), time.time())


def status_view(agent: GateAgent) -> dict[str, Any]:
    status = agent.status()
    if status["last_sync_at"] is not None:
        status["last_sync_at"] = _iso(status["last_sync_at"])
    return status


async def index(request: web.Request) -> web.Response:
    if not await asyncio.to_thread(_logged_in, request):
        return web.Response(text=LOGIN_PAGE, content_type="text/html")
    return web.Response(text=SCANS_PAGE, content_type="text/html")


async def login(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    peer = request.remote or "?"
    fails = request.app[FAILS].setdefault(peer, deque())
    now = time.monotonic()
    while fails and now - fails[0] > 60:
        fails.popleft()
    if len(fails) >= LOGIN_FAILS_PER_MIN:
        return _error(429, "RATE_LIMITED", "too many wrong PINs; wait a minute")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(400, "VALIDATION_ERROR", "body: must be a JSON object")
    pin = body.get("pin") if isinstance(body, dict) else None
    if not isinstance(pin, str) or not pin:
        return _error(400, "VALIDATION_ERROR", "pin: required, a string of digits")
    if not hmac.compare_digest(pin.encode(), agent.config.pin.encode()):
        fails.append(now)
        return _error(401, "UNAUTHORIZED", "wrong PIN")
    token = secrets.token_urlsafe(32)
    await asyncio.to_thread(agent.outbox.add_session, _hash(token), time.time() + SESSION_TTL_S)
    resp = _ok({"logged_in": True})
    resp.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    return resp


@web.middleware
async def require_session(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in ("/", "/api/login") or not request.path.startswith(("/api/", "/ws")):
        return await handler(request)
    if not await asyncio.to_thread(_logged_in, request):
        return _error(401, "UNAUTHORIZED", "log in with the gate PIN first")
    return await handler(request)


async def api_status(request: web.Request) -> web.Response:
    return _ok(await asyncio.to_thread(status_view, request.app[AGENT]))


async def api_scans(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "50")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 500:
        return _error(400, "VALIDATION_ERROR", "limit: must be an integer 1..500")
    scans = await asyncio.to_thread(request.app[AGENT].outbox.recent, limit)
    return _ok([s.public() for s in scans])


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    try:
        status = await asyncio.to_thread(status_view, request.app[AGENT])
        await ws.send_json({"type": "status", "data": status})
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        request.app[SOCKETS].discard(ws)
    return ws


async def _broadcast(app: web.Application, message: dict[str, Any]) -> None:
    text = json.dumps(message)
    sockets: set[Any] = app[SOCKETS]
    for ws in list(sockets):
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            app[SOCKETS].discard(ws)


async def _streams(app: web.Application) -> Any:
    """Scans as they happen (from the decode thread) and status every few seconds."""
    loop = asyncio.get_running_loop()
    agent = app[AGENT]

    def on_scan(record: ScanRecord) -> None:
        message = {"type": "scan", "data": record.public()}
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(_broadcast(app, message)))

    async def status_loop() -> None:
        while True:
            await asyncio.sleep(2)
            if app[SOCKETS]:
                status = await asyncio.to_thread(status_view, agent)
                await _broadcast(app, {"type": "status", "data": status})

    agent.decider.listeners.append(on_scan)
    task = asyncio.create_task(status_loop())
    yield
    task.cancel()
    agent.decider.listeners.remove(on_scan)
    sockets: set[Any] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close()


def make_dashboard(agent: GateAgent) -> web.Application:
    app = web.Application(middlewares=[require_session])
    app[AGENT] = agent
    app[SOCKETS] = set()
    app[FAILS] = {}
    app.router.add_get("/", index)
    app.router.add_post("/api/login", login)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/api/scans", api_scans)
    app.router.add_get("/ws", ws_handler)
    app.cleanup_ctx.append(_streams)
    return app


LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Gate login</title></head>
<body><h1>Gate</h1><form id="f"><label>PIN <input id="pin" type="password" inputmode="numeric"
autocomplete="off"></label> <button>Log in</button></form><p id="err"></p><script>
document.getElementById('f').onsubmit = async (e) => { e.preventDefault();
  const r = await fetch('/api/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({pin: document.getElementById('pin').value})});
  if (r.ok) location.reload(); else document.getElementById('err').textContent = 'Wrong PIN'; };
</script></body></html>"""

SCANS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Gate scans</title>
<style>td,th{padding:2px 8px;text-align:left} .SUCCESS{color:green} .off{font-style:italic}</style>
</head><body><h1>Gate <span id="st"></span></h1><table><thead><tr><th>time</th><th>result</th>
<th>mode</th><th>seat</th><th>ms</th></tr></thead><tbody id="rows"></tbody></table><script>
const rows = document.getElementById('rows');
function add(s, top) { const tr = document.createElement('tr'); tr.className = s.result;
  const seat = s.seat ? (s.seat.row ?? '') + ' ' + (s.seat.number ?? '') : '';
  for (const v of [s.at, s.result, s.mode, seat, s.latency_ms]) {
    const td = document.createElement('td'); td.textContent = v ?? ''; tr.appendChild(td); }
  if (top) rows.prepend(tr); else rows.appendChild(tr); }
fetch('/api/scans?limit=100').then(r => r.json()).then(b => b.data.forEach(s => add(s, false)));
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
ws.onmessage = (m) => { const msg = JSON.parse(m.data);
  if (msg.type === 'scan') add(msg.data, true);
  else document.getElementById('st').textContent = msg.data.online ? '(online)' : '(OFFLINE)'; };
</script></body></html>"""
