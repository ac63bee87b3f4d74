"""Orders over real HTTP on SQLite and PostgreSQL: create, idempotency, transitions, stats."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from central.errors import ApiError
from central.orders.app import store_key
from tests.orders.conftest import Api


def new_order(**over: Any) -> dict[str, Any]:
    body = {
        "order_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "seat_id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "credits_charged": 350,
        "hold_id": str(uuid.uuid4()),
    }
    body.update(over)
    return body


async def make_order(api: Api, **over: Any) -> dict[str, Any]:
    status, body = await api.call("POST", "/orders", new_order(**over))
    assert status == 201, body
    return body["data"]


async def move(api: Api, order_id: str, to: str, **extra: Any) -> tuple[int, Any]:
    return await api.call("POST", f"/orders/{order_id}/transition", {"to": to, **extra})


async def test_create_then_get(api: Api) -> None:
    body = new_order()
    status, created = await api.call("POST", "/orders", body)
    assert status == 201
    order = created["data"]
    assert created["success"] is True
    for key in ("order_id", "user_id", "seat_id", "event_id", "credits_charged", "hold_id"):
        assert order[key] == body[key]
    assert order["status"] == "PENDING"
    assert order["confirmed_at"] is None
    assert order["created_at"].endswith("Z")
    status, got = await api.call("GET", f"/orders/{body['order_id']}")
    assert status == 200
    assert got["data"] == order


async def test_create_is_idempotent_by_order_id(api: Api) -> None:
    body = new_order()
    first = await api.call("POST", "/orders", body)
    again = await api.call("POST", "/orders", body)
    assert first[0] == 201
    assert again[0] == 200
    assert again[1]["data"] == first[1]["data"]
    assert await api.count("orders") == 1


async def test_same_order_id_with_other_fields_conflicts(api: Api) -> None:
    body = new_order()
    await api.call("POST", "/orders", body)
    status, err = await api.call("POST", "/orders", {**body, "credits_charged": 1})
    assert status == 409
    assert err["error_code"] == "IDEMPOTENCY_CONFLICT"
    assert err["details"]["field"] == "credits_charged"
    _, got = await api.call("GET", f"/orders/{body['order_id']}")
    assert got["data"]["credits_charged"] == 350


async def test_hold_id_is_optional(api: Api) -> None:
    body = new_order()
    del body["hold_id"]
    status, created = await api.call("POST", "/orders", body)
    assert status == 201
    assert created["data"]["hold_id"] is None


async def test_concurrent_creates_of_one_order_insert_it_once(api: Api) -> None:
    body = new_order()
    results = await asyncio.gather(*(api.call("POST", "/orders", body) for _ in range(6)))
    assert sorted(status for status, _ in results) == [200] * 5 + [201], results
    assert len({str(answer["data"]) for _, answer in results}) == 1
    assert await api.count("orders") == 1


async def test_an_insert_refused_for_another_reason_than_the_id_is_a_validation_error(
    api: Api,
) -> None:
    # the HTTP layer refuses negative credits first; the store must not mistake the database's
    # refusal for a repeated create
    with pytest.raises(ApiError) as refused:
        await api.app[store_key].create_order(new_order(credits_charged=-1))
    assert refused.value.code == "VALIDATION_ERROR"
    assert await api.count("orders") == 0


async def test_unknown_order_is_not_found(api: Api) -> None:
    status, err = await api.call("GET", f"/orders/{uuid.uuid4()}")
    assert (status, err["error_code"]) == (404, "ORDER_NOT_FOUND")
    status, err = await move(api, str(uuid.uuid4()), "CONFIRMED")
    assert (status, err["error_code"]) == (404, "ORDER_NOT_FOUND")


async def test_list_filters_newest_first(api: Api) -> None:
    user, seat, event = (str(uuid.uuid4()) for _ in range(3))
    a = await make_order(api, user_id=user, event_id=event)
    b = await make_order(api, user_id=user, seat_id=seat)
    c = await make_order(api, seat_id=seat, event_id=event)
    await move(api, b["order_id"], "CONFIRMED")

    async def ids(query: str) -> list[str]:
        status, body = await api.call("GET", f"/orders?{query}")
        assert status == 200, body
        return [o["order_id"] for o in body["data"]]

    assert await ids(f"user_id={user}") == [b["order_id"], a["order_id"]]
    assert await ids(f"seat_id={seat}") == [c["order_id"], b["order_id"]]
    assert await ids(f"event_id={event}") == [c["order_id"], a["order_id"]]
    assert await ids(f"user_id={user}&status=CONFIRMED") == [b["order_id"]]
    assert await ids(f"seat_id={seat}&status=PENDING") == [c["order_id"]]
    assert await ids("status=REFUNDED") == []
    assert len(await ids("")) == 3
    assert len(await ids("limit=2")) == 2


@pytest.mark.parametrize(
    ("path", "final"),
    [
        (["CONFIRMED"], "CONFIRMED"),
        (["FAILED"], "FAILED"),
        (["CONFIRMED", "REFUNDED"], "REFUNDED"),
    ],
)
async def test_every_allowed_transition(api: Api, path: list[str], final: str) -> None:
    order = await make_order(api)
    for to in path:
        status, body = await move(api, order["order_id"], to)
        assert status == 200, body
        assert body["data"]["status"] == to
    _, got = await api.call("GET", f"/orders/{order['order_id']}")
    assert got["data"]["status"] == final


async def test_confirm_sets_confirmed_at_and_reason_is_kept(api: Api) -> None:
    order = await make_order(api)
    _, body = await move(api, order["order_id"], "CONFIRMED")
    confirmed = body["data"]
    assert confirmed["confirmed_at"] is not None and confirmed["confirmed_at"].endswith("Z")
    assert confirmed["confirmed_at"] >= order["created_at"]
    _, body = await move(api, order["order_id"], "REFUNDED", reason="event cancelled")
    assert body["data"]["reason"] == "event cancelled"
    assert body["data"]["confirmed_at"] == confirmed["confirmed_at"]


async def test_same_state_again_is_unchanged(api: Api) -> None:
    order = await make_order(api)
    _, first = await move(api, order["order_id"], "CONFIRMED")
    status, again = await move(api, order["order_id"], "CONFIRMED")
    assert status == 200
    assert again["data"] == first["data"]  # updated_at and confirmed_at not touched


@pytest.mark.parametrize(
    ("path", "to", "status_now"),
    [
        (["FAILED"], "CONFIRMED", "FAILED"),
        (["FAILED"], "REFUNDED", "FAILED"),
        ([], "REFUNDED", "PENDING"),
        (["CONFIRMED"], "FAILED", "CONFIRMED"),
        (["CONFIRMED", "REFUNDED"], "CONFIRMED", "REFUNDED"),
        (["CONFIRMED", "REFUNDED"], "FAILED", "REFUNDED"),
    ],
)
async def test_disallowed_transitions(api: Api, path: list[str], to: str, status_now: str) -> None:
    order = await make_order(api)
    for step in path:
        assert (await move(api, order["order_id"], step))[0] == 200
    status, err = await move(api, order["order_id"], to)
    assert status == 409
    assert err["error_code"] == "ORDER_INVALID_STATE"
    assert err["details"]["status"] == status_now
    _, got = await api.call("GET", f"/orders/{order['order_id']}")
    assert got["data"]["status"] == status_now


async def test_racing_confirm_and_fail_exactly_one_wins(api: Api) -> None:
    order = await make_order(api)
    targets = ["CONFIRMED", "FAILED"] * 4
    results = await asyncio.gather(*(move(api, order["order_id"], to) for to in targets))
    _, got = await api.call("GET", f"/orders/{order['order_id']}")
    winner = got["data"]
    for to, (status, answer) in zip(targets, results, strict=True):
        if to == winner["status"]:
            # the winner and its repeats answer the one row written once
            assert (status, answer["data"]) == (200, winner)
        else:
            assert status == 409, answer
            assert answer["error_code"] == "ORDER_INVALID_STATE"
            assert answer["details"]["status"] == winner["status"]


async def test_compensation_fails_a_confirmed_order(api: Api) -> None:
    order = await make_order(api)
    await move(api, order["order_id"], "CONFIRMED")
    status, body = await move(
        api, order["order_id"], "FAILED", compensation=True, reason="seat confirm failed"
    )
    assert status == 200
    assert body["data"]["status"] == "FAILED"
    assert body["data"]["reason"] == "seat confirm failed"
    # compensation does not open other doors: a refunded order stays refunded
    other = await make_order(api)
    await move(api, other["order_id"], "CONFIRMED")
    await move(api, other["order_id"], "REFUNDED")
    status, err = await move(api, other["order_id"], "FAILED", compensation=True)
    assert (status, err["details"]["status"]) == (409, "REFUNDED")


async def test_stats_counts_and_revenue(api: Api) -> None:
    event = str(uuid.uuid4())
    prices = {"c1": 350, "c2": 250, "refunded": 180, "failed": 99, "pending": 50}
    orders = {
        k: await make_order(api, event_id=event, credits_charged=v) for k, v in prices.items()
    }
    await make_order(api, credits_charged=1000)  # another event: not counted
    for key in ("c1", "c2", "refunded"):
        await move(api, orders[key]["order_id"], "CONFIRMED")
    await move(api, orders["refunded"]["order_id"], "REFUNDED")
    await move(api, orders["failed"]["order_id"], "FAILED")
    status, body = await api.call("GET", f"/stats?event_id={event}")
    assert status == 200
    assert body["data"] == {
        "event_id": event,
        "orders_by_status": {"PENDING": 1, "CONFIRMED": 2, "FAILED": 1, "REFUNDED": 1},
        "revenue": 600,
    }


async def test_stats_of_an_event_without_orders(api: Api) -> None:
    event = str(uuid.uuid4())
    status, body = await api.call("GET", f"/stats?event_id={event}")
    assert status == 200
    assert body["data"]["revenue"] == 0
    assert set(body["data"]["orders_by_status"].values()) == {0}
