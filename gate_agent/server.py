"""The gate's own HTTP side (api-contract "Commands"): the staff dashboard page (static files in
gate_agent/dashboard/), PIN login with a session cookie, GET /api/status, GET /api/scans, WS /ws,
the camera preview as MJPEG and manual code entry. Sessions are stored hashed in the outbox, so
staff stay logged in across a restart of the agent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from gate_agent.agent import GateAgent
from gate_agent.metrics import attach_metrics
from gate_agent.outbox import ScanRecord, _iso
from gate_agent.preview import PreviewEncoder

logger = logging.getLogger(__name__)

COOKIE = "gate_session"
SESSION_TTL_S = 12 * 3600
# A 4-digit PIN has 10 000 values: 5 guesses per lockout keeps brute force at days, not minutes.
LOGIN_MAX_FAILS = 5
LOGIN_LOCK_S = 120.0
# Wrong PINs from all addresses together before only known staff addresses may still try.
LOGIN_GLOBAL_MAX_FAILS = 50
LOGIN_GLOBAL_WINDOW_S = 600.0
LOGIN_MAX_TRACKED = 10_000
# A request body that has not arrived by then is dropped (a slow client holds no handler open).
BODY_TIMEOUT_S = 10.0
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREVIEW_FPS = 5.0
PREVIEW_MAX_CLIENTS = 4
MANUAL_CODE_MAX = 4096
STATIC_DIR = Path(__file__).resolve().parent / "dashboard"
# no inline script or style on the page: an injected scan value can never run
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class LoginGuard:
    """Counts PIN attempts per client address: one host guessing locks itself out, not the staff
    at their own devices. An attempt is counted when it is claimed, after its body has arrived and
    before the PIN is compared, with nothing awaited between the count, the comparison and the
    verdict: logins whose bodies arrive late or all at once cannot pass a check made earlier.
    After max_fails wrong PINs in a row an address is locked for lock_s.

    Addresses are cheap on a LAN, so a backstop counts wrong PINs from everyone: past
    global_max_fails within global_window_s, only addresses that logged in successfully in the
    last session lifetime may still try. Sessions already open stay valid throughout."""

    def __init__(
        self,
        max_fails: int = LOGIN_MAX_FAILS,
        lock_s: float = LOGIN_LOCK_S,
        global_max_fails: int = LOGIN_GLOBAL_MAX_FAILS,
        global_window_s: float = LOGIN_GLOBAL_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_fails, self.lock_s = max_fails, lock_s
        self.clock = clock  # the login handler's `now`; injectable so tests need not sleep
        self.global_max_fails, self.global_window_s = global_max_fails, global_window_s
        self._fails: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._recent_fails: deque[float] = deque()
        self._trusted_until: dict[str, float] = {}

    def claim(self, address: str, now: float) -> float:
        """Count an attempt from address; answers 0 when its PIN may be compared, else the
        seconds until this address may try again."""
        wait = self._locked_until.get(address, 0.0) - now
        if wait > 0:
            return wait
        while self._recent_fails and self._recent_fails[0] <= now - self.global_window_s:
            self._recent_fails.popleft()
        if (
            len(self._recent_fails) >= self.global_max_fails
            and self._trusted_until.get(address, 0.0) <= now
        ):
            return self._recent_fails[0] + self.global_window_s - now
        if len(self._fails) > LOGIN_MAX_TRACKED:
            self._forget_old(now)
        self._fails[address] = self._fails.get(address, 0) + 1
        return 0.0

    def failed(self, address: str, now: float) -> int:
        """The claimed attempt had a wrong PIN; returns the tries left (0: now locked)."""
        self._recent_fails.append(now)
        fails = self._fails.get(address, 0)
        if fails >= self.max_fails:
            self._fails.pop(address, None)
            self._locked_until[address] = now + self.lock_s
            self._forget_old(now)
            logger.warning(
                "dashboard login locked for an address after wrong PINs",
                extra={"fields": {"peer": address}},
            )
            return 0
        return self.max_fails - fails

    def succeeded(self, address: str, now: float) -> None:
        self._fails.pop(address, None)
        self._trusted_until[address] = now + SESSION_TTL_S

    def _forget_old(self, now: float) -> None:
        # Bounded memory: past this many addresses, forget the locks that have run out.
        if len(self._locked_until) > LOGIN_MAX_TRACKED:
            self._locked_until = {a: t for a, t in self._locked_until.items() if t > now}
        if len(self._fails) > LOGIN_MAX_TRACKED:
            self._fails.clear()
        if len(self._trusted_until) > LOGIN_MAX_TRACKED:
            self._trusted_until = {a: t for a, t in self._trusted_until.items() if t > now}


AGENT: web.AppKey[GateAgent] = web.AppKey("agent", GateAgent)
SOCKETS: web.AppKey[set[Any]] = web.AppKey("sockets", set)
GUARD: web.AppKey[LoginGuard] = web.AppKey("guard", LoginGuard)
PREVIEW: web.AppKey[PreviewEncoder] = web.AppKey("preview", PreviewEncoder)
PREVIEW_OPTS: web.AppKey[dict[str, float]] = web.AppKey("preview_opts", dict)
CLOSING: web.AppKey[asyncio.Event] = web.AppKey("closing", asyncio.Event)


def _ok(data: Any) -> web.Response:
    return web.json_response({"success": True, "data": data})


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"success": False, "error_code": code, "message": message, **extra}, status=status
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _logged_in(request: web.Request) -> bool:
    token = request.cookies.get(COOKIE)
    if not token:
        return False
    return await request.app[AGENT].outbox.session_valid_async(_hash(token), time.time())


async def status_view(agent: GateAgent) -> dict[str, Any]:
    status = agent.status(await agent.outbox.counts_async())
    for key in ("last_sync_at", "disabled_since"):
        if status.get(key) is not None:
            status[key] = _iso(status[key])
    return status


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-store"})


async def index(request: web.Request) -> web.StreamResponse:
    if not await _logged_in(request):
        return _page("login.html")
    return _page("index.html")


def _same_pin(given: str, expected: str) -> bool:
    # hash first: compare_digest on raw strings of different lengths would leak the length
    a = hashlib.sha256(given.encode()).digest()
    b = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(a, b)


async def _json_body(request: web.Request) -> Any:
    """The body as JSON, or the error response to send: a body that does not arrive in time is
    a 408, anything that is not JSON (a nesting too deep for the parser included) a 400."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            raw = await request.read()
    except TimeoutError:
        return _error(408, "REQUEST_TIMEOUT", "the request body did not arrive in time")
    except ConnectionResetError:
        # The client went away: no one reads this answer, and nothing failed on the gate.
        return _error(400, "CLIENT_GONE", "the client closed the connection mid-request")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _error(400, "VALIDATION_ERROR", "body: must be a JSON object")


def _peer(request: web.Request) -> str:
    return request.remote or "unknown"


async def login(request: web.Request) -> web.Response:
    agent, guard = request.app[AGENT], request.app[GUARD]
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    pin = body.get("pin") if isinstance(body, dict) else None
    if not isinstance(pin, str) or not pin or len(pin) > 64:
        return _error(400, "VALIDATION_ERROR", "pin: required, a string of digits")
    # From the claim to the verdict nothing is awaited: the count and the decision are one step.
    now, peer = guard.clock(), _peer(request)
    wait = guard.claim(peer, now)
    if wait > 0:
        return _locked(wait)
    if not _same_pin(pin, agent.config.pin):
        left = guard.failed(peer, now)
        logger.info("wrong dashboard PIN", extra={"fields": {"peer": peer}})
        if left == 0:
            return _locked(guard.lock_s)
        return _error(401, "UNAUTHORIZED", f"wrong PIN; {left} tries left", tries_left=left)
    guard.succeeded(peer, now)
    token = secrets.token_urlsafe(32)
    await agent.outbox.add_session_async(_hash(token), time.time() + SESSION_TTL_S)
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


def _locked(wait: float) -> web.Response:
    seconds = max(1, int(wait + 0.999))
    resp = _error(
        429,
        "RATE_LIMITED",
        f"too many wrong PINs; login locked for {seconds} s",
        retry_after_s=seconds,
    )
    resp.headers["Retry-After"] = str(seconds)
    return resp


async def logout(request: web.Request) -> web.Response:
    # End the session on the gate, not only in this browser: a copy of the cookie dies too.
    token = request.cookies.get(COOKIE)
    if token:
        await asyncio.to_thread(request.app[AGENT].outbox.remove_session, _hash(token))
    resp = _ok({"logged_in": False})
    resp.del_cookie(COOKIE, path="/")
    return resp


_OPEN = ("/", "/api/login", "/api/logout")


@web.middleware
async def require_session(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in _OPEN or not request.path.startswith(("/api/", "/ws")):
        return await handler(request)
    if not await _logged_in(request):
        return _error(401, "UNAUTHORIZED", "log in with the gate PIN first")
    return await handler(request)


def _origin_of(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


@web.middleware
async def same_origin(request: web.Request, handler: Any) -> web.StreamResponse:
    """A page on another site that a visitor (or staff member) opens must not drive the gate:
    browsers send Origin on every cross-site POST and WebSocket upgrade, and we refuse any other
    than our own. Clients that send no Origin are not browsers acting for another site."""
    origin = request.headers.get("Origin")
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if origin is not None and (request.method in STATE_CHANGING or upgrade):
        if origin.lower() != _origin_of(request):
            logger.info(
                "cross-origin request refused",
                extra={"fields": {"peer": _peer(request), "path": request.path}},
            )
            return _error(403, "FORBIDDEN", "requests from another site are refused")
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    resp: web.StreamResponse
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
    if not resp.prepared:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/api/"):
            resp.headers.setdefault("Cache-Control", "no-store")
    if isinstance(resp, web.HTTPException):
        raise resp
    return resp


async def api_status(request: web.Request) -> web.Response:
    return _ok(await status_view(request.app[AGENT]))


async def api_scans(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "50")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 500:
        return _error(400, "VALIDATION_ERROR", "limit: must be an integer 1..500")
    scans = await request.app[AGENT].outbox.recent_async(limit)
    return _ok([s.public() for s in scans])


def _manual_code(body: Any) -> str | web.Response:
    if not isinstance(body, dict):
        return _error(400, "VALIDATION_ERROR", "body: must be a JSON object")
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        return _error(400, "VALIDATION_ERROR", "code: required, the ticket's code as text")
    code = code.strip()
    if len(code) > MANUAL_CODE_MAX:
        return _error(400, "VALIDATION_ERROR", f"code: at most {MANUAL_CODE_MAX} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in code):
        return _error(400, "VALIDATION_ERROR", "code: must not contain control characters")
    return code


async def api_manual(request: web.Request) -> web.Response:
    """A code typed in by staff (a phone screen the camera cannot read) takes the very path a
    camera scan takes: the decider, the outbox, the indicator, the upload to central."""
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    code = _manual_code(body)
    if isinstance(code, web.Response):
        return code
    agent = request.app[AGENT]
    record = await asyncio.to_thread(
        agent.decider.handle, code, agent.clock.wall(), time.monotonic(), "manual"
    )
    # the counters come with the verdict, so the page shows both at once
    return _ok({**record.public(), "source": "manual", "status": await status_view(agent)})


async def api_preview(request: web.Request) -> web.StreamResponse:
    """MJPEG: one JPEG part per new decoded frame, at most fps a second."""
    app = request.app
    opts = app[PREVIEW_OPTS]
    if opts["clients"] >= opts["max_clients"]:
        return _error(503, "BUSY", "too many preview viewers; close one and retry")
    resp = web.StreamResponse(
        headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=frame",
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
        }
    )
    await resp.prepare(request)
    opts["clients"] += 1
    interval = 1.0 / opts["fps"]
    closing = app[CLOSING]
    last_seq = -1
    try:
        while not closing.is_set():
            started = time.monotonic()
            got = await app[PREVIEW].jpeg()
            if got is not None and got[0] != last_seq:
                last_seq, jpeg = got
                await resp.write(
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(jpeg)).encode()
                    + b"\r\n\r\n"
                    + jpeg
                    + b"\r\n"
                )
            pause = interval - (time.monotonic() - started)
            try:
                await asyncio.wait_for(closing.wait(), max(pause, 0.001))
            except TimeoutError:
                pass
    except (ConnectionError, RuntimeError):
        pass  # the viewer went away
    finally:
        opts["clients"] -= 1
    return resp


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    try:
        status = await status_view(request.app[AGENT])
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
    """Scans as they happen (from the decode thread), status on every online/offline change and
    every couple of seconds besides."""
    loop = asyncio.get_running_loop()
    agent = app[AGENT]

    async def push_scan(record: ScanRecord) -> None:
        # the counters travel with the scan, so the page updates both in one paint
        status = await status_view(agent) if app[SOCKETS] else None
        await _broadcast(app, {"type": "scan", "data": record.public(), "status": status})

    def on_scan(record: ScanRecord) -> None:
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(push_scan(record)))

    async def push_status() -> None:
        if app[SOCKETS]:
            status = await status_view(agent)
            await _broadcast(app, {"type": "status", "data": status})

    async def status_loop() -> None:
        while True:
            await asyncio.sleep(2)
            try:
                await push_status()
            except RuntimeError:
                logger.warning("status push failed", exc_info=True)

    previous = agent.connectivity.on_change

    def on_change(online: bool) -> None:
        if previous is not None:
            previous(online)
        # the banner must not wait for the next tick to say the gate lost central
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(push_status()))

    agent.connectivity.on_change = on_change
    revocation = agent.revocation
    previous_revoked = revocation.on_change

    def on_revoked(disabled: bool) -> None:
        if previous_revoked is not None:
            previous_revoked(disabled)
        # "gate disabled" must reach the staff screen at once, not at the next tick
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(push_status()))

    revocation.on_change = on_revoked
    agent.decider.listeners.append(on_scan)
    task = asyncio.create_task(status_loop())
    yield
    app[CLOSING].set()
    task.cancel()
    agent.connectivity.on_change = previous
    revocation.on_change = previous_revoked
    agent.decider.listeners.remove(on_scan)
    sockets: set[Any] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close()


async def _on_shutdown(app: web.Application) -> None:
    app[CLOSING].set()  # ends the MJPEG streams, which would otherwise hold shutdown open
    # The same for staff screens: the server waits for every handler before it stops, and a
    # WebSocket's handler runs until its page goes. Closed here ("going away"), the page shows
    # its screen is stale and reconnects when the gate is back.
    sockets: set[Any] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"gate stopping")


def make_dashboard(
    agent: GateAgent,
    *,
    login_max_fails: int = LOGIN_MAX_FAILS,
    login_lock_s: float = LOGIN_LOCK_S,
    login_clock: Callable[[], float] = time.monotonic,
    preview_fps: float = PREVIEW_FPS,
    preview_max_clients: int = PREVIEW_MAX_CLIENTS,
) -> web.Application:
    app = web.Application(middlewares=[security_headers, same_origin, require_session])
    app[AGENT] = agent
    app[SOCKETS] = set()
    app[GUARD] = LoginGuard(login_max_fails, login_lock_s, clock=login_clock)
    app[PREVIEW] = PreviewEncoder(lambda: agent.pipeline.last_frame)
    app[PREVIEW_OPTS] = {"fps": preview_fps, "max_clients": preview_max_clients, "clients": 0}
    app[CLOSING] = asyncio.Event()
    app.router.add_get("/", index)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/api/scans", api_scans)
    app.router.add_post("/api/manual", api_manual)
    app.router.add_get("/api/preview.mjpg", api_preview)
    app.router.add_get("/ws", ws_handler)
    app.router.add_static("/static/", STATIC_DIR, show_index=False)
    attach_metrics(app, agent)
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_streams)
    return app
