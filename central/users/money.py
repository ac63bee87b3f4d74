"""The users service's money routes (docs/internal-api.md, "users: money"): top-ups, the payment
providers' confirmations, and credit holds."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Annotated

from aiohttp import web
from pydantic import Field, StringConstraints

from central.errors import ApiError
from central.users.holds import HoldStore
from central.users.models import MAX_CREDITS, Body, Reference
from central.users.payments import PaymentProvider
from central.users.topups import Credited, Topup, TopupStore
from central.web import created, ok, parse_body, parse_uuid

log = logging.getLogger(__name__)

MAX_TOPUP = 1_000_000  # credits in one top-up: a typo of many zeros is refused, not charged


@dataclass
class Money:
    topups: TopupStore
    holds: HoldStore
    provider: PaymentProvider


money_key = web.AppKey("users_money", Money)


class NewTopup(Body):
    user_id: uuid.UUID
    amount: int = Field(gt=0, le=MAX_TOPUP)
    # The public site's base URL: where the checkout page lives (demo) or Stripe sends the
    # customer back to.
    site_url: Annotated[str, StringConstraints(min_length=8, max_length=500, pattern=r"^https?://")]


class DemoComplete(Body):
    topup_id: uuid.UUID
    secret: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StripeDelivery(Body):
    payload: Annotated[str, StringConstraints(max_length=1_000_000)]
    signature: Annotated[str, StringConstraints(max_length=2000)] | None = None


class NewHold(Body):
    user_id: uuid.UUID
    amount: int = Field(gt=0, le=MAX_CREDITS)
    reference_id: Reference


class ReleaseHold(Body):
    reference_id: Reference


def _money(request: web.Request) -> Money:
    return request.app[money_key]


def _credited(done: Credited) -> dict[str, object]:
    return {**done.topup.public(), "credited": done.first, "credit_balance": done.credit_balance}


async def create_topup(request: web.Request) -> web.Response:
    body = await parse_body(request, NewTopup)
    money = _money(request)
    provider = money.provider
    secret = provider.new_secret()
    topup = await money.topups.create(
        user_id=str(body.user_id), amount=body.amount, provider=provider.name, secret=secret
    )
    try:
        checkout = await provider.start_checkout(topup, secret=secret, site_url=body.site_url)
    except ApiError:
        await money.topups.fail(topup.topup_id)
        raise
    topup = await money.topups.attach_checkout(
        topup.topup_id, checkout.provider_ref, checkout.checkout_url
    )
    log.info(
        "top-up started",
        extra={"fields": {"topup_id": topup.topup_id, "provider": provider.name}},
    )
    return created(topup.public())


async def get_topup(request: web.Request) -> web.Response:
    topup_id = parse_uuid(request.match_info["topup_id"], "topup_id")
    return ok((await _money(request).topups.get(topup_id)).public())


async def _demo_topup(request: web.Request) -> tuple[Money, Topup]:
    """The top-up a demo checkout page speaks for: the URL's secret is its only credential."""
    money = _money(request)
    if money.provider.name != "demo":
        raise ApiError("PAYMENTS_UNAVAILABLE", "the demo checkout is off: a real provider is set")
    body = await parse_body(request, DemoComplete)
    topup = await money.topups.get(str(body.topup_id))
    money.topups.check_secret(topup, body.secret)
    return money, topup


async def demo_quote(request: web.Request) -> web.Response:
    _, topup = await _demo_topup(request)
    return ok({"topup_id": topup.topup_id, "amount": topup.amount, "status": topup.status})


async def demo_complete(request: web.Request) -> web.Response:
    money, topup = await _demo_topup(request)
    return ok(_credited(await money.topups.credit(topup.topup_id)))


async def stripe_webhook(request: web.Request) -> web.Response:
    money = _money(request)
    if money.provider.name != "stripe":
        raise ApiError("PAYMENTS_UNAVAILABLE", "Stripe is not the configured payment provider")
    body = await parse_body(request, StripeDelivery)
    notice = money.provider.verify_webhook(body.payload.encode(), body.signature)
    if notice is None:
        return ok({"handled": False})
    topup = await money.topups.find(notice.topup_id) if _is_uuid(notice.topup_id) else None
    if topup is None or topup.provider != "stripe":
        raise ApiError("WEBHOOK_INVALID", "the event names no top-up of ours")
    if topup.provider_ref and notice.provider_ref != topup.provider_ref:
        raise ApiError("WEBHOOK_INVALID", "the event's session is not this top-up's session")
    done = await money.topups.credit(topup.topup_id)
    log.info(
        "top-up confirmed",
        extra={"fields": {"topup_id": topup.topup_id, "first": done.first}},
    )
    return ok({"handled": True, **_credited(done)})


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def place_hold(request: web.Request) -> web.Response:
    body = await parse_body(request, NewHold)
    hold, fresh = await _money(request).holds.place(
        str(body.user_id), body.amount, body.reference_id
    )
    return ok({**hold.public(), "created": fresh})


async def release_hold(request: web.Request) -> web.Response:
    body = await parse_body(request, ReleaseHold)
    hold = await _money(request).holds.release(body.reference_id)
    return ok({"released": hold is not None, "hold": hold.public() if hold else None})


async def holds_of(request: web.Request) -> web.Response:
    reference = request.match_info["reference_id"][:200]
    holds = await _money(request).holds.for_reference(reference)
    return ok([h.public() for h in holds])


async def held_of(request: web.Request) -> web.Response:
    user_id = parse_uuid(request.match_info["user_id"], "user_id")
    return ok({"user_id": user_id, "held_credits": await _money(request).holds.held(user_id)})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/topups", create_topup)
    r.add_get("/topups/{topup_id}", get_topup)
    r.add_post("/payments/demo/quote", demo_quote)
    r.add_post("/payments/demo/complete", demo_complete)
    r.add_post("/payments/stripe/webhook", stripe_webhook)
    r.add_post("/credits/holds", place_hold)
    r.add_post("/credits/holds/release", release_hold)
    r.add_get("/credits/holds/{reference_id:.+}", holds_of)
    r.add_get("/credits/{user_id}/held", held_of)
