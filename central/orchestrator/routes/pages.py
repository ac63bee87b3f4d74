"""The faces: the attendee app at `/` and the organiser console at `/admin/`, static files shipped in
the package (central/orchestrator/web/). They talk only to the public API, like any other client.

Every page and asset carries a strict Content-Security-Policy (no inline script or style, nothing
from another host: a venue's network may be offline) and is revalidated on each load, so a new
release is picked up without a build step or hashed file names."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from central.orchestrator.answers import serves

routes = web.RouteTableDef()

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

# The folders a browser may read; anything else under web/ (or outside it) is a 404.
ASSET_FOLDERS = ("attendee", "admin", "shared", "vendor")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


def page_headers(content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        # The files are small and change with a release: revalidate every time (Last-Modified
        # answers 304 when nothing changed) rather than serve a stale script beside a new page.
        "Cache-Control": "no-cache",
    }


def _file(path: Path) -> web.FileResponse:
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers=page_headers(content_type))


@routes.get("/")
@serves("text/html")
async def attendee_page(request: web.Request) -> web.FileResponse:
    return _file(WEB_DIR / "attendee" / "index.html")


@routes.get("/admin")
@serves("text/html")  # a redirect to /admin/
async def admin_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/admin/")


@routes.get("/admin/")
@serves("text/html")
async def admin_page(request: web.Request) -> web.FileResponse:
    return _file(WEB_DIR / "admin" / "index.html")


@routes.get("/app/{folder}/{name}")
@serves(*sorted(set(CONTENT_TYPES.values())))
async def asset(request: web.Request) -> web.FileResponse:
    folder, name = request.match_info["folder"], request.match_info["name"]
    # One level, plain names: no path can climb out of web/.
    if folder not in ASSET_FOLDERS or "/" in name or "\\" in name or name.startswith("."):
        raise web.HTTPNotFound()
    return _file(WEB_DIR / folder / name)
