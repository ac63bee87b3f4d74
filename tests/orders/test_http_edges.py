"""The orders service's edges: the internal credential, /health and /metrics, and malformed input
on every route answering 400 naming the field, writing nothing, never 500."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.orders.conftest import TOKEN, Api

U = "3f2b8c9e-1d4a-4f6b-9c2e-5a7d8e9f0a1b"


def order(**over: Any) -> dict[str, Any]:
    body = {
        "order_id": str(uuid.uuid4()),
        "user_id": U,
        "seat_id": U,
        "event_id": U,
        "credits_charged": 10,
    }
    body.update(over)
    return body


def transfer(**over: Any) -> dict[str, Any]:
    body = {
        "transfer_id": str(uuid.uuid4()),
        "seat_id": U,
        "seller_user_id": U,
        "buyer_user_id": str(uuid.uuid4()),
        "credits_amount": 10,
        "initiated_by": "SELLER",
    }
    body.update(over)
    return body


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


HUGE = "x" * 20_000

# (method, path, body, expected error code, the field the answer must name or None)
BAD_BODIES: list[tuple[str, str, Any, str, str | None]] = [
    ("POST", "/orders", b"{not json", "VALIDATION_ERROR", None),
    ("POST", "/orders", b"[1, 2]", "VALIDATION_ERROR", None),
    ("POST", "/orders", b"", "VALIDATION_ERROR", "order_id"),
    ("POST", "/orders", without(order(), "order_id"), "VALIDATION_ERROR", "order_id"),
    ("POST", "/orders", without(order(), "user_id"), "VALIDATION_ERROR", "user_id"),
    ("POST", "/orders", without(order(), "credits_charged"), "VALIDATION_ERROR", "credits_charged"),
    ("POST", "/orders", order(order_id="nope"), "INVALID_UUID", "order_id"),
    ("POST", "/orders", order(seat_id=HUGE), "INVALID_UUID", "seat_id"),
    ("POST", "/orders", order(event_id=12), "INVALID_UUID", "event_id"),
    ("POST", "/orders", order(hold_id="1234"), "INVALID_UUID", "hold_id"),
    ("POST", "/orders", order(credits_charged="10"), "VALIDATION_ERROR", "credits_charged"),
    ("POST", "/orders", order(credits_charged=1.5), "VALIDATION_ERROR", "credits_charged"),
    ("POST", "/orders", order(credits_charged=-1), "VALIDATION_ERROR", "credits_charged"),
    ("POST", "/orders", order(credits_charged=10**30), "VALIDATION_ERROR", "credits_charged"),
    ("POST", "/orders", order(credits_charged=True), "VALIDATION_ERROR", "credits_charged"),
    ("POST", "/orders", order(status="CONFIRMED"), "VALIDATION_ERROR", "status"),
    ("POST", f"/orders/{U}/transition", {}, "VALIDATION_ERROR", "to"),
    ("POST", f"/orders/{U}/transition", {"to": "PENDING"}, "VALIDATION_ERROR", "to"),
    ("POST", f"/orders/{U}/transition", {"to": 3}, "VALIDATION_ERROR", "to"),
    ("POST", f"/orders/{U}/transition", {"to": HUGE}, "VALIDATION_ERROR", "to"),
    (
        "POST",
        f"/orders/{U}/transition",
        {"to": "FAILED", "compensation": "yes"},
        "VALIDATION_ERROR",
        "compensation",
    ),
    (
        "POST",
        f"/orders/{U}/transition",
        {"to": "FAILED", "reason": HUGE},
        "VALIDATION_ERROR",
        "reason",
    ),
    ("POST", "/orders/not-a-uuid/transition", {"to": "FAILED"}, "INVALID_UUID", "order_id"),
    ("POST", "/transfers", b"\xff\xfe", "VALIDATION_ERROR", None),
    ("POST", "/transfers", without(transfer(), "seat_id"), "VALIDATION_ERROR", "seat_id"),
    ("POST", "/transfers", without(transfer(), "initiated_by"), "VALIDATION_ERROR", "initiated_by"),
    ("POST", "/transfers", transfer(initiated_by="ADMIN"), "VALIDATION_ERROR", "initiated_by"),
    ("POST", "/transfers", transfer(transfer_id=HUGE), "INVALID_UUID", "transfer_id"),
    ("POST", "/transfers", transfer(buyer_user_id=None), "INVALID_UUID", "buyer_user_id"),
    ("POST", "/transfers", transfer(credits_amount=[1]), "VALIDATION_ERROR", "credits_amount"),
    ("POST", "/transfers", transfer(credits_amount=-5), "VALIDATION_ERROR", "credits_amount"),
    ("POST", f"/transfers/{U}/transition", {"to": "DONE"}, "VALIDATION_ERROR", "to"),
    (
        "POST",
        f"/transfers/{U}/transition",
        {"to": "FAILED", "reason": 5},
        "VALIDATION_ERROR",
        "reason",
    ),
    ("POST", "/transfers/xyz/transition", {"to": "FAILED"}, "INVALID_UUID", "transfer_id"),
    ("POST", f"/transfers/{U}/confirm-party", {}, "VALIDATION_ERROR", "party"),
    ("POST", f"/transfers/{U}/confirm-party", {"party": "admin"}, "VALIDATION_ERROR", "party"),
    ("POST", "/transfers/1/confirm-party", {"party": "buyer"}, "INVALID_UUID", "transfer_id"),
    ("GET", "/orders/123", None, "INVALID_UUID", "order_id"),
    ("GET", "/transfers/123", None, "INVALID_UUID", "transfer_id"),
    ("GET", "/orders?seat_id=abc", None, "INVALID_UUID", "seat_id"),
    ("GET", "/orders?status=SHIPPED", None, "VALIDATION_ERROR", "status"),
    ("GET", "/orders?limit=0", None, "VALIDATION_ERROR", "limit"),
    ("GET", "/orders?limit=many", None, "VALIDATION_ERROR", "limit"),
    ("GET", "/orders?colour=red", None, "VALIDATION_ERROR", "colour"),
    ("GET", "/transfers?user_id=x", None, "INVALID_UUID", "user_id"),
    ("GET", "/transfers?status=OPEN", None, "VALIDATION_ERROR", "status"),
    ("GET", "/stats", None, "VALIDATION_ERROR", "event_id"),
    ("GET", "/stats?event_id=E", None, "INVALID_UUID", "event_id"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "field"),
    BAD_BODIES,
    ids=[f"{m} {p[:30]} {i}" for i, (m, p, *_) in enumerate(BAD_BODIES)],
)
async def test_malformed_input_is_a_400_naming_the_field(
    api: Api, method: str, path: str, body: Any, code: str, field: str | None
) -> None:
    # real rows exist, so a route that wrote anything would change the counts
    _, made = await api.call("POST", "/orders", order(order_id=U))
    assert made["data"]["order_id"] == U
    _, made = await api.call("POST", "/transfers", transfer(transfer_id=U))
    assert made["data"]["transfer_id"] == U
    before = await api.rows("SELECT * FROM orders"), await api.rows("SELECT * FROM transfers")

    status, err = await api.call(method, path, body)

    assert status == 400, err
    assert err["success"] is False
    assert err["error_code"] == code
    if field is not None:
        assert err["details"]["field"] == field
        assert field in err["message"]
    after = await api.rows("SELECT * FROM orders"), await api.rows("SELECT * FROM transfers")
    assert after == before


async def test_the_internal_credential_is_required(api: Api) -> None:
    for method, path in [
        ("GET", f"/orders/{U}"),
        ("POST", "/orders"),
        ("GET", "/stats?event_id=" + U),
        ("POST", "/transfers"),
    ]:
        for headers in ({}, {"X-Internal-Token": TOKEN + "x"}):
            async with api.client.request(method, path, headers=headers, json=order()) as resp:
                body = await resp.json()
                assert resp.status == 401
                assert body["error_code"] == "UNAUTHORIZED"
    assert await api.count("orders") == 0


async def test_health_and_metrics_need_no_credential(api: Api) -> None:
    async with api.client.get("/health") as resp:
        body = await resp.json()
        assert resp.status == 200
        assert body["status"] == "healthy"
        assert body["checks"] == {"database": "ok"}
    await api.call("GET", f"/orders/{U}")
    async with api.client.get("/metrics") as resp:
        text = await resp.text()
        assert resp.status == 200
        assert "http_requests_total" in text
        assert "/orders/{order_id}" in text


async def test_the_schema_survives_a_restart(api: Api) -> None:
    # migrate() on an already-migrated database applies nothing and keeps the rows
    from central.db import migrate
    from central.orders.app import store_key
    from central.orders.schema import STEPS

    await api.call("POST", "/orders", order(order_id=U))
    engine = api.app[store_key].engine
    assert await migrate(engine, STEPS) == len(STEPS)
    assert await api.count("orders") == 1


ODD_VALUES: list[Any] = [
    None,
    "",
    "\u0000",
    "bad\u0000reason",
    HUGE,
    -1,
    0,
    10**40,
    1e308,
    True,
    [],
    {},
    {"nested": [1, {"x": None}]},
    "00000000-0000-0000-0000-000000000000",
    "CONFIRMED",
]

VALID_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/orders", {**order(order_id=U), "hold_id": U}),
    ("POST", f"/orders/{U}/transition", {"to": "FAILED", "compensation": True, "reason": "r"}),
    ("POST", "/transfers", transfer(transfer_id=U)),
    ("POST", f"/transfers/{U}/transition", {"to": "FAILED", "reason": "r"}),
    ("POST", f"/transfers/{U}/confirm-party", {"party": "buyer"}),
]


@pytest.mark.parametrize(("method", "path", "valid"), VALID_BODIES)
async def test_odd_values_in_every_field_never_break_the_service(
    api: Api, method: str, path: str, valid: dict[str, Any]
) -> None:
    await api.call("POST", "/orders", order(order_id=U))
    await api.call("POST", "/transfers", transfer(transfer_id=U))
    await api.call("POST", f"/transfers/{U}/transition", {"to": "PENDING_OTP"})
    for field in valid:
        for value in ODD_VALUES:
            status, answer = await api.call(method, path, {**valid, field: value})
            assert status < 500, (field, value, answer)
            assert answer["success"] is (status < 400), (field, value, answer)
