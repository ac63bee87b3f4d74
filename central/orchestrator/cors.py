"""Cross-origin calls to the public API, for the browser origins the operator names
(`--cors-origin`) and no others. A named origin gets its preflight answered and its own origin
echoed back; any other origin gets no CORS header at all, so the browser keeps its same-origin
rule. Bearer tokens travel in the Authorization header, so no credentials mode is offered."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from central.web import Handler

ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Correlation-ID"
# what a page may read from an answer besides the simple headers
EXPOSED_HEADERS = "X-Server-Time, X-Correlation-ID, X-QR-Expires-At"
PREFLIGHT_MAX_AGE = "600"


class Cors:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origins)

    def allowed(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        return origin if origin in self.origins else None

    @web.middleware
    async def preflight(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer an allowed origin's preflight here: no route has an OPTIONS handler."""
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
            and self.allowed(request)
        ):
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                },
            )
        return await handler(request)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every answer, errors included: the allowed origin echoed, and Vary so a shared cache
        never hands one origin's answer to another."""
        response.headers.add("Vary", "Origin")
        origin = self.allowed(request)
        if origin is None:
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        if request.method != "OPTIONS":
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


def install(app: web.Application, origins: Iterable[str]) -> None:
    """CORS only when the operator named origins; otherwise the app is left as it is."""
    cors = Cors(origins)
    if not cors.origins:
        return
    app.middlewares.append(cors.preflight)
    app.on_response_prepare.append(cors.on_prepare)
