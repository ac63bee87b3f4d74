"""The ticket's current token drawn as a QR code, SVG or PNG, for clients that do not draw it
themselves. The same token as GET /api/tickets/{seat_id}/qr: signed now, valid 60 s, so the
image is never cached (Cache-Control: no-store) and says when it expires (X-QR-Expires-At)."""

from __future__ import annotations

import io
import time

import segno
from aiohttp import web

from central.clients.inventory import owned_and_sold
from central.orchestrator.answers import serves
from central.orchestrator.auth import authenticate
from central.orchestrator.keys import backends_key
from central.orchestrator.saga_requests import runtime_of
from central.timeutil import iso_ms
from central.web import parse_uuid
from proto.ticket_token import TTL_SECONDS

routes = web.RouteTableDef()

MAX_VERSION = 6  # a TR1 token (139 alphanumerics) fits version 6 at M: big modules on a phone
SCALE = 8  # pixels per module in the PNG (and the SVG's intrinsic size)
BORDER = 4  # the quiet zone the QR standard asks for, in modules


def qr_code(payload: str) -> segno.QRCode:
    # error level exactly M (no boost): the symbol stays at version 6, as gates expect
    code = segno.make(payload, error="m", micro=False, boost_error=False)
    if not isinstance(code.version, int) or code.version > MAX_VERSION:
        # a token format that outgrew the promise: fail loudly rather than draw a denser code
        raise ValueError(f"token needs QR version {code.version} > {MAX_VERSION}")
    return code


def svg_bytes(code: segno.QRCode) -> bytes:
    out = io.BytesIO()
    # viewBox (omitsize) so it scales to any box, plus an intrinsic size for an unstyled <img>;
    # a white background so a dark page cannot eat the quiet zone
    code.save(
        out,
        kind="svg",
        scale=SCALE,
        border=BORDER,
        xmldecl=False,
        omitsize=True,
        dark="#000",
        light="#fff",
    )
    side = (code.symbol_size(scale=1, border=BORDER)[0]) * SCALE
    return out.getvalue().replace(b"<svg ", f'<svg width="{side}" height="{side}" '.encode(), 1)


def png_bytes(code: segno.QRCode) -> bytes:
    out = io.BytesIO()
    code.save(out, kind="png", scale=SCALE, border=BORDER, dark="#000", light="#fff")
    return out.getvalue()


async def _current_token(request: web.Request) -> tuple[str, int]:
    backends = request.app[backends_key]
    me = await authenticate(request, backends)
    seat_id = parse_uuid(request.match_info["seat_id"], "seat_id")
    seat = await backends.inventory.seat(seat_id)
    owned_and_sold(seat, me.user_id, "QR code")
    now = time.time()
    payload = runtime_of(request).keyring.sign(seat.seat_id, seat.owner_epoch, now)
    return payload, int(now)


def _image(body: bytes, content_type: str, issued: int) -> web.Response:
    return web.Response(
        body=body,
        content_type=content_type,
        headers={
            "Cache-Control": "no-store",
            "X-QR-Expires-At": iso_ms((issued + TTL_SECONDS) * 1000),
            "X-Content-Type-Options": "nosniff",
            # an SVG opened on its own is a document: it may run nothing
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


@routes.get("/api/tickets/{seat_id}/qr.svg")
@serves("image/svg+xml")
async def ticket_qr_svg(request: web.Request) -> web.Response:
    payload, issued = await _current_token(request)
    return _image(svg_bytes(qr_code(payload)), "image/svg+xml", issued)


@routes.get("/api/tickets/{seat_id}/qr.png")
@serves("image/png")
async def ticket_qr_png(request: web.Request) -> web.Response:
    payload, issued = await _current_token(request)
    return _image(png_bytes(qr_code(payload)), "image/png", issued)
