"""Money in through the public API: card top-ups with the `stripe` provider (a Checkout Session made
through the official library against a local stand-in for Stripe's API; webhooks signed the way
Stripe signs them) and with the `demo` provider (central's own checkout page).

Must show (issue 14, item 1): a valid event credits once even when delivered five times or
concurrently; a bad signature, a stale timestamp or an unknown top-up changes nothing (400); the
amount credited comes from our record, not the event."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cluster import Cluster, running_cluster
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres
from purchase_support import balance
from stripe_standin import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeStandIn,
    completed_event,
    sign,
    stripe_standin,
)

SERVICES = ("inventory", "users", "orders", "events", "orchestrator")
TOPUP = 40


@asynccontextmanager
async def stripe_cluster(
    tmp_path: Path, database_url: str | None = None
) -> AsyncIterator[tuple[Cluster, StripeStandIn]]:
    async with (
        stripe_standin() as stand_in,
        running_cluster(
            tmp_path,
            database_url=database_url,
            payments="stripe",
            stripe_secret_key=SECRET_KEY,
            stripe_webhook_secret=WEBHOOK_SECRET,
            stripe_api_base=stand_in.url,
        ) as c,
    ):
        yield c, stand_in


async def start_topup(c: Cluster, user: dict[str, Any], amount: int = TOPUP) -> dict[str, Any]:
    status, body = await c.call(
        "POST", "/api/credits/topup", json_body={"amount": amount}, token=user["token"]
    )
    assert status == 201, body
    return dict(body["data"])


async def deliver(c: Cluster, payload: bytes, signature: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await c.call("POST", "/api/webhooks/stripe", data=payload, headers=headers)


async def topup_status(c: Cluster, user: dict[str, Any], topup_id: str) -> str:
    status, body = await c.call("GET", f"/api/credits/topups/{topup_id}", token=user["token"])
    assert status == 200, body
    return str(body["data"]["status"])


async def topup_entries(c: Cluster, topup_id: str) -> int:
    """Ledger entries written for this top-up (its key is `topup:<id>`)."""
    try:
        await c.backends.users.call("GET", f"/credits/entries/topup:{topup_id}")
    except Exception:
        return 0
    return 1


async def test_checkout_session_is_made_through_the_stripe_library(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, stand_in):
        user = await c.make_user()
        topup = await start_topup(c, user, 25)
        assert topup["provider"] == "stripe" and topup["status"] == "PENDING"
        session = stand_in.session_for(topup["topup_id"])
        assert topup["checkout_url"] == session["url"]
        form = session["form"]
        assert form["mode"] == "payment"
        assert form["line_items[0][price_data][unit_amount]"] == "2500"
        assert form["line_items[0][price_data][currency]"] == "usd"
        assert form["metadata[topup_id]"] == topup["topup_id"]
        assert stand_in.auth_headers[-1] == f"Bearer {SECRET_KEY}"
        assert stand_in.idempotency_keys[-1] == f"topup-{topup['topup_id']}"
        assert await balance(c, user["user_id"]) == 0  # nothing before Stripe says paid


async def test_bad_amount_is_a_400_naming_the_field(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, stand_in):
        user = await c.make_user()
        for bad in (0, -5, "10", 10**9):
            status, body = await c.call(
                "POST", "/api/credits/topup", json_body={"amount": bad}, token=user["token"]
            )
            assert status == 400, body
            assert body["details"]["field"] == "amount"
        assert stand_in.sessions == []
        status, _ = await c.call("POST", "/api/credits/topup", json_body={"amount": 5})
        assert status == 401


async def test_event_delivered_five_times_credits_once(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, stand_in):
        user = await c.make_user(credits=7)
        topup = await start_topup(c, user)
        payload = completed_event(stand_in.session_for(topup["topup_id"]))
        for _ in range(5):
            status, body = await deliver(c, payload, sign(payload))
            assert status == 200, body
            assert body["data"]["handled"] is True
        assert await balance(c, user["user_id"]) == 7 + TOPUP
        assert await topup_status(c, user, topup["topup_id"]) == "PAID"
        assert await topup_entries(c, topup["topup_id"]) == 1


async def concurrent_deliveries(c: Cluster, stand_in: StripeStandIn) -> None:
    user = await c.make_user()
    topup = await start_topup(c, user)
    payload = completed_event(stand_in.session_for(topup["topup_id"]))
    go = asyncio.Event()

    async def one() -> int:
        await go.wait()
        status, _ = await deliver(c, payload, sign(payload))
        return status

    tasks = [asyncio.create_task(one()) for _ in range(8)]
    await asyncio.sleep(0)
    go.set()  # every delivery released at once
    assert await asyncio.gather(*tasks) == [200] * 8
    assert await balance(c, user["user_id"]) == TOPUP
    cached = await c.backends.users.call("GET", f"/users/{user['user_id']}")
    assert cached["credit_balance"] == TOPUP  # the cached column agrees with the ledger sum
    assert await topup_status(c, user, topup["topup_id"]) == "PAID"


async def test_concurrent_deliveries_credit_once(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, stand_in):
        await concurrent_deliveries(c, stand_in)


async def on_postgres(
    tmp_path: Path, body: Callable[[Cluster, StripeStandIn], Awaitable[None]]
) -> None:
    prefix = fresh_postgres_prefix()
    try:
        async with stripe_cluster(tmp_path, prefix) as (c, stand_in):
            await body(c, stand_in)
    finally:
        await drop_prefix_databases(prefix, SERVICES)


@needs_postgres
async def test_concurrent_deliveries_credit_once_on_postgres(tmp_path: Path) -> None:
    await on_postgres(tmp_path, concurrent_deliveries)


async def test_amount_comes_from_our_record_not_the_event(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, stand_in):
        user = await c.make_user()
        topup = await start_topup(c, user, 12)
        session = dict(stand_in.session_for(topup["topup_id"]))
        session["metadata"] = {**session["metadata"], "amount": "999999"}
        payload = completed_event(session, amount_total=99_999_900)
        status, body = await deliver(c, payload, sign(payload))
        assert status == 200, body
        assert await balance(c, user["user_id"]) == 12


async def test_refused_deliveries_change_nothing(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, stand_in):
        user = await c.make_user()
        topup = await start_topup(c, user)
        session = stand_in.session_for(topup["topup_id"])
        payload = completed_event(session)
        before = await c.row_counts()
        unknown = completed_event({**session, "client_reference_id": str(uuid.uuid4())})
        other_session = completed_event({**session, "id": "cs_test_not_ours"})
        refusals = {
            "bad signature": (payload, sign(payload, secret="whsec_someone_else")),
            "tampered body": (payload.replace(b'"paid"', b'"paid" '), sign(payload)),
            "stale timestamp": (payload, sign(payload, at=int(time.time()) - 301 - 5)),
            "missing signature": (payload, None),
            "garbage signature": (payload, "t=abc,v1=zz"),
            "unknown top-up": (unknown, sign(unknown)),
            "another session": (other_session, sign(other_session)),
        }
        for name, (body_bytes, signature) in refusals.items():
            status, body = await deliver(c, body_bytes, signature)
            assert status == 400, (name, body)
            assert body["error_code"] == "WEBHOOK_INVALID", (name, body)
        assert await c.row_counts() == before
        assert await balance(c, user["user_id"]) == 0
        assert await topup_status(c, user, topup["topup_id"]) == "PENDING"
        # ...and the genuine event still works afterwards.
        status, _ = await deliver(c, payload, sign(payload))
        assert status == 200
        assert await balance(c, user["user_id"]) == TOPUP


async def test_unpaid_and_other_events_are_acknowledged_without_credit(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, stand_in):
        user = await c.make_user()
        topup = await start_topup(c, user)
        payload = completed_event(stand_in.session_for(topup["topup_id"]), payment_status="unpaid")
        status, body = await deliver(c, payload, sign(payload))
        assert status == 200 and body["data"]["handled"] is False
        assert await balance(c, user["user_id"]) == 0
        assert await topup_status(c, user, topup["topup_id"]) == "PENDING"


async def test_a_topup_is_only_visible_to_its_owner(tmp_path: Path) -> None:
    async with stripe_cluster(tmp_path) as (c, _):
        user, other = await c.make_user(), await c.make_user()
        topup = await start_topup(c, user)
        status, body = await c.call(
            "GET", f"/api/credits/topups/{topup['topup_id']}", token=other["token"]
        )
        assert status == 404 and body["error_code"] == "TOPUP_NOT_FOUND"
        # the demo page and its calls do not exist while a real provider is set
        status, _ = await c.call("GET", f"/pay/demo/{topup['topup_id']}")
        assert status == 404
        status, _ = await c.call(
            "POST",
            "/api/payments/demo/complete",
            json_body={"topup_id": topup["topup_id"], "secret": "x"},
        )
        assert status == 404


async def test_demo_provider_checkout_page_completes_once(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:  # the embedded default: --payments demo
        user = await c.make_user(credits=3)
        topup = await start_topup(c, user, 30)
        assert topup["provider"] == "demo"
        url = topup["checkout_url"]
        assert url.startswith(c.url + f"/pay/demo/{topup['topup_id']}#")
        secret = url.split("#", 1)[1]

        async with c.session.get(url.split("#")[0]) as resp:
            assert resp.status == 200
            csp = resp.headers["Content-Security-Policy"]
            page = await resp.text()
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "<script>" not in page and 'src="/pay/demo/static/checkout.js"' in page
        status, _ = await c.call("GET", "/pay/demo/static/checkout.js")
        assert status == 200

        wrong = {"topup_id": topup["topup_id"], "secret": "not-the-secret"}
        status, body = await c.call("POST", "/api/payments/demo/complete", json_body=wrong)
        assert status == 404, body
        assert await balance(c, user["user_id"]) == 3

        good = {"topup_id": topup["topup_id"], "secret": secret}
        status, body = await c.call("POST", "/api/payments/demo/quote", json_body=good)
        assert status == 200 and body["data"] == {
            "topup_id": topup["topup_id"],
            "amount": 30,
            "status": "PENDING",
        }
        for _ in range(3):
            status, body = await c.call("POST", "/api/payments/demo/complete", json_body=good)
            assert status == 200, body
            assert body["data"]["status"] == "PAID" and body["data"]["credit_balance"] == 33
        assert await balance(c, user["user_id"]) == 33
        assert await topup_status(c, user, topup["topup_id"]) == "PAID"
        # the Stripe webhook does not exist while the demo provider is set
        status, _ = await deliver(c, b"{}", "t=1,v1=00")
        assert status == 404
