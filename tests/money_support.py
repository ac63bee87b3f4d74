"""Shared steps for the money-out tests: an admin's cancel/refund calls, the ledger's totals, and
a gate's offline verdict from a freshly synced manifest."""

from __future__ import annotations

import time
from typing import Any

from cluster import Cluster
from verify_support import gate_verify

from gate_agent.verifier import Manifest, decide_offline, local_check


async def cancel(c: Cluster, admin: dict[str, Any], event_id: str) -> tuple[int, Any]:
    return await c.call(
        "POST",
        f"/api/admin/events/{event_id}/cancel",
        token=admin["token"],
        json_body={"reason": "the band cancelled"},
    )


async def refund(c: Cluster, admin: dict[str, Any], order_id: str) -> tuple[int, Any]:
    return await c.call("POST", f"/api/admin/orders/{order_id}/refund", token=admin["token"])


async def orders_of(c: Cluster, **filters: str) -> list[dict[str, Any]]:
    return list(await c.backends.orders.call("GET", "/orders", params={**filters, "limit": "1000"}))


async def ledger_total(c: Cluster, user_ids: list[str]) -> int:
    """Credits held by these users now (the ledger's sum for each)."""
    total = 0
    for user_id in user_ids:
        data = await c.backends.users.call("GET", f"/credits/{user_id}/balance")
        total += int(data["credit_balance"])
    return total


async def refund_entries(c: Cluster, order_id: str) -> int:
    try:
        await c.backends.users.call("GET", f"/credits/entries/refund:{order_id}")
    except Exception:
        return 0
    return 1


async def offline_verdict(c: Cluster, gate: dict[str, Any], qr_payload: str) -> str:
    """What a gate that just synced its manifest decides for this code without central."""
    manifest = Manifest()
    cursor = 0
    while True:
        status, body = await c.call(
            "GET", f"/api/gate/manifest?cursor={cursor}", token=gate["device_token"]
        )
        assert status == 200, body
        manifest.apply(body["data"])
        cursor = body["data"]["cursor"]
        if not body["data"]["more"]:
            break
    now = time.time()
    verdict = local_check(qr_payload, manifest.keys, now, clock_known=True)
    assert verdict.claims is not None, verdict
    return decide_offline(verdict.claims, manifest, set(), now).result


async def online_verdict(c: Cluster, gate: dict[str, Any], qr_payload: str) -> str:
    status, body = await gate_verify(c, gate, qr_payload)
    assert status == 200, body
    return str(body["data"]["result"])
