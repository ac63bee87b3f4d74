"""Payment providers behind one small interface (ARCHITECTURE §10 "Money").

A provider starts a checkout for a top-up (where the customer pays) and turns the provider's
confirmation into "this top-up is paid". It never names an amount to credit: the top-up's stored
amount is credited (topups.py), so a confirmation cannot make a balance grow by more than was asked.

- `demo`: central's own checkout page (the embedded default and the demo). Its URL carries a
  one-time secret in the fragment; the page posts it back to complete the top-up.
- `stripe`: a Stripe Checkout Session per top-up through the official `stripe` library, with
  `client_reference_id` = topup_id; the webhook is checked with the library's own signature check.
"""

from __future__ import annotations

import importlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from central.config import Settings
from central.errors import ApiError
from central.users.topups import Topup

log = logging.getLogger(__name__)

SIGNATURE_TOLERANCE = 300  # seconds, as Stripe recommends; an older signed event is refused
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


@dataclass(frozen=True)
class Checkout:
    provider_ref: str
    checkout_url: str


@dataclass(frozen=True)
class PaidNotice:
    """A verified confirmation from the provider: which top-up, and the provider's own id."""

    topup_id: str
    provider_ref: str


class PaymentProvider(Protocol):
    name: str

    def new_secret(self) -> str | None:
        """A secret the checkout URL carries (demo), or None."""

    async def start_checkout(self, topup: Topup, *, secret: str | None, site_url: str) -> Checkout:
        """Where the customer pays; raises ApiError SERVICE_UNAVAILABLE when the provider fails."""

    def verify_webhook(self, payload: bytes, signature: str | None) -> PaidNotice | None:
        """A verified paid confirmation, None for a verified event that pays nothing;
        ApiError WEBHOOK_INVALID when the signature does not hold."""

    async def close(self) -> None: ...


class DemoProvider:
    name = "demo"

    def new_secret(self) -> str | None:
        return secrets.token_urlsafe(24)

    async def start_checkout(self, topup: Topup, *, secret: str | None, site_url: str) -> Checkout:
        # The secret rides in the fragment: browsers never send it to a server in the request
        # line, so it stays out of access logs; the page reads it and posts it back.
        url = f"{site_url.rstrip('/')}/pay/demo/{topup.topup_id}#{secret}"
        return Checkout(provider_ref=f"demo_{topup.topup_id}", checkout_url=url)

    def verify_webhook(self, payload: bytes, signature: str | None) -> PaidNotice | None:
        raise ApiError("PAYMENTS_UNAVAILABLE", "the demo provider takes no webhooks")

    async def close(self) -> None:
        return None


class StripeProvider:
    name = "stripe"

    def __init__(
        self, secret_key: str, webhook_secret: str, api_base: str | None, currency: str
    ) -> None:
        # Imported here: the library takes a second to import, which a central on the demo
        # provider (and every restart in the crash tests) need not pay.
        stripe: Any = importlib.import_module("stripe")
        self.stripe = stripe
        self.webhook_secret = webhook_secret
        self.currency = currency.lower()
        base = {"api": api_base.rstrip("/")} if api_base else None
        self._http = stripe.AIOHTTPClient(timeout=20)
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=2,
        )

    def new_secret(self) -> str | None:
        return None

    async def start_checkout(self, topup: Topup, *, secret: str | None, site_url: str) -> Checkout:
        site = site_url.rstrip("/")
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": topup.topup_id,
            "metadata": {"topup_id": topup.topup_id, "user_id": topup.user_id},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": self.currency,
                        # one credit costs one unit of the currency
                        "unit_amount": topup.amount * 100,
                        "product_data": {"name": f"{topup.amount} TicketRemaster credits"},
                    },
                }
            ],
            "success_url": f"{site}/?topup={topup.topup_id}",
            "cancel_url": f"{site}/?topup={topup.topup_id}&cancelled=1",
        }
        try:
            # The top-up id as Stripe's idempotency key: a retried request makes no second session.
            session = await self.client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"topup-{topup.topup_id}"},
            )
        except self.stripe.StripeError as exc:
            log.warning("stripe: creating the checkout session failed: %s", type(exc).__name__)
            raise ApiError("SERVICE_UNAVAILABLE", "the payment provider is unavailable") from None
        if not session.url:
            raise ApiError("SERVICE_UNAVAILABLE", "the payment provider gave no checkout page")
        return Checkout(provider_ref=session.id, checkout_url=session.url)

    def verify_webhook(self, payload: bytes, signature: str | None) -> PaidNotice | None:
        if not signature:
            raise ApiError("WEBHOOK_INVALID", "Stripe-Signature header missing")
        try:
            event = self.stripe.Webhook.construct_event(
                payload, signature, self.webhook_secret, tolerance=SIGNATURE_TOLERANCE
            )
        except self.stripe.SignatureVerificationError:
            raise ApiError(
                "WEBHOOK_INVALID", "signature does not match or the timestamp is too old"
            ) from None
        except ValueError:
            raise ApiError("WEBHOOK_INVALID", "the event is not valid JSON") from None
        if event.type not in PAID_EVENTS:
            return None
        session = event.data.object.to_dict()
        if session.get("payment_status") != "paid":
            return None  # e.g. a delayed payment method: its async_payment_succeeded follows
        topup_id = session.get("client_reference_id")
        if not isinstance(topup_id, str) or not topup_id:
            raise ApiError("WEBHOOK_INVALID", "the session names no top-up")
        return PaidNotice(topup_id=topup_id, provider_ref=str(session.get("id") or ""))

    async def close(self) -> None:
        await self._http.close_async()


def make_provider(settings: Settings) -> PaymentProvider:
    if settings.payments == "stripe":
        assert settings.stripe_secret_key and settings.stripe_webhook_secret  # validated at start
        return StripeProvider(
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            settings.stripe_api_base,
            settings.stripe_currency,
        )
    return DemoProvider()
