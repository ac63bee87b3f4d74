"""Money in (api-contract "Money in"): card top-ups, the Stripe webhook, and the demo provider's
own checkout page. The users service holds the provider and the ledger; these routes authenticate,
check who may see what and pass the provider's raw confirmation on untouched."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from central.clients.models import Topup
from central.clients.users import UsersClient
from central.errors import ApiError
from central.orchestrator.answer_models import DemoPayment, TopupView, WebhookReceived
from central.orchestrator.answers import answers, serves
from central.orchestrator.auth import authenticate
from central.orchestrator.keys import backends_key, settings_key
from central.web import parse_body, parse_uuid

routes = web.RouteTableDef()

MAX_TOPUP = 1_000_000
# Stripe's events are a few KiB; the users service takes bodies up to 256 KiB.
MAX_WEBHOOK_BYTES = 200 * 1024
# The demo page runs only its own files: no inline script, nothing from another host.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_FILES = {"checkout.js": "text/javascript", "checkout.css": "text/css"}


class TopupBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    amount: int = Field(gt=0, le=MAX_TOPUP)


class DemoBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    topup_id: uuid.UUID
    secret: Annotated[str, StringConstraints(min_length=1, max_length=200)]


def site_url(request: web.Request) -> str:
    """This site's public base URL, as the client reached it (checkout pages link back to it)."""
    return f"{request.scheme}://{request.host}"


def _topup_view(topup: Topup) -> TopupView:
    # the fields the model names only: never the owner's id
    return TopupView.model_validate({k: topup.get(k) for k in TopupView.model_fields})


@routes.post("/api/credits/topup")
@answers(TopupView, 201)
async def create_topup(request: web.Request) -> TopupView:
    backends = request.app[backends_key]
    principal = await authenticate(request, backends)
    body = await parse_body(request, TopupBody)
    topup = await backends.users.create_topup(principal.user_id, body.amount, site_url(request))
    return _topup_view(topup)


@routes.get("/api/credits/topups/{topup_id}")
@answers(TopupView)
async def get_topup(request: web.Request) -> TopupView:
    backends = request.app[backends_key]
    principal = await authenticate(request, backends)
    topup_id = parse_uuid(request.match_info["topup_id"], "topup_id")
    topup = await backends.users.topup(topup_id)
    if topup["user_id"] != principal.user_id and principal.role != "admin":
        raise ApiError("TOPUP_NOT_FOUND", "no such top-up")  # others' top-ups do not exist
    return _topup_view(topup)


@routes.post("/api/webhooks/stripe")
@answers(WebhookReceived)
async def stripe_webhook(request: web.Request) -> WebhookReceived:
    """Stripe's confirmation: the signature is checked over the exact bytes received, so they are
    passed on as they came (as text: Stripe sends UTF-8 JSON)."""
    if request.app[settings_key].payments != "stripe":
        raise ApiError("PAYMENTS_UNAVAILABLE", "Stripe is not the configured payment provider")
    raw = await request.read()
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise ApiError("WEBHOOK_INVALID", "the event is too large")
    try:
        payload = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("WEBHOOK_INVALID", "the event is not UTF-8 text") from None
    handled = await request.app[backends_key].users.stripe_webhook(
        payload, request.headers.get("Stripe-Signature")
    )
    return WebhookReceived(received=True, handled=handled)


def _demo_only(request: web.Request) -> None:
    if request.app[settings_key].payments != "demo":
        raise web.HTTPNotFound()


@routes.get("/pay/demo/{topup_id}")
@serves("text/html")
async def demo_page(request: web.Request) -> web.StreamResponse:
    _demo_only(request)
    parse_uuid(request.match_info["topup_id"], "topup_id")
    html = resources.files("central.orchestrator.demo_checkout").joinpath("index.html")
    return _static(html.read_bytes(), "text/html")


@routes.get("/pay/demo/static/{name}")
@serves(*PAGE_FILES.values())
async def demo_asset(request: web.Request) -> web.StreamResponse:
    _demo_only(request)
    name = request.match_info["name"]
    if name not in PAGE_FILES:
        raise web.HTTPNotFound()
    data = resources.files("central.orchestrator.demo_checkout").joinpath(name).read_bytes()
    return _static(data, PAGE_FILES[name])


def _static(data: bytes, content_type: str) -> web.Response:
    response = web.Response(body=data, content_type=content_type, charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
    )
    return response


async def _demo_call(
    request: web.Request, step: Callable[[UsersClient, str, str], Awaitable[dict[str, Any]]]
) -> DemoPayment:
    _demo_only(request)
    body = await parse_body(request, DemoBody)
    data = await step(request.app[backends_key].users, str(body.topup_id), body.secret)
    # anyone holding the checkout URL may call this: the model's fields only, never the owner
    return DemoPayment.model_validate({k: data[k] for k in DemoPayment.model_fields if k in data})


@routes.post("/api/payments/demo/quote")
@answers(DemoPayment)
async def demo_quote(request: web.Request) -> DemoPayment:
    return await _demo_call(request, UsersClient.demo_quote)


@routes.post("/api/payments/demo/complete")
@answers(DemoPayment)
async def demo_complete(request: web.Request) -> DemoPayment:
    return await _demo_call(request, UsersClient.demo_complete)
