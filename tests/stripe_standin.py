"""A local HTTP server standing in for Stripe's API (these machines cannot reach Stripe), and events
signed the way Stripe signs them (`Stripe-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "t.payload")>`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

SECRET_KEY = "sk_test_standin_123"
WEBHOOK_SECRET = "whsec_standin_456"


@dataclass
class StripeStandIn:
    url: str = ""
    sessions: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)

    def session_for(self, topup_id: str) -> dict[str, Any]:
        return next(s for s in self.sessions if s["client_reference_id"] == topup_id)


@asynccontextmanager
async def stripe_standin() -> AsyncIterator[StripeStandIn]:
    state = StripeStandIn()

    async def create_session(request: web.Request) -> web.Response:
        form = dict(parse_qsl(await request.text()))
        state.auth_headers.append(request.headers.get("Authorization", ""))
        state.idempotency_keys.append(request.headers.get("Idempotency-Key", ""))
        session_id = f"cs_test_{uuid.uuid4().hex}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "client_reference_id": form.get("client_reference_id"),
            "mode": form.get("mode"),
            "payment_status": "unpaid",
            "status": "open",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "metadata": {
                k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")
            },
            "form": form,
        }
        state.sessions.append(session)
        return web.json_response({k: v for k, v in session.items() if k != "form"})

    app = web.Application()
    app.router.add_post("/v1/checkout/sessions", create_session)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


def completed_event(
    session: dict[str, Any], *, payment_status: str = "paid", amount_total: int | None = None
) -> bytes:
    """A `checkout.session.completed` event as Stripe would send it for `session`."""
    obj = {k: v for k, v in session.items() if k != "form"}
    obj.update(payment_status=payment_status, status="complete")
    if amount_total is not None:
        obj["amount_total"] = amount_total
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": "checkout.session.completed",
        "livemode": False,
        "data": {"object": obj},
    }
    return json.dumps(event).encode()


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + payload
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"
