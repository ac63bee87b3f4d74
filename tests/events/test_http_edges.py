"""The events service's edges: the internal credential, /health and /metrics, and malformed input
on every route answering 400 naming the field, writing nothing, never 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.events.conftest import TOKEN, Api

U = "3f2b8c9e-1d4a-4f6b-9c2e-5a7d8e9f0a1b"
HUGE = "x" * 20_000


def event(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Show",
        "venue": {"name": "Arena"},
        "hall_id": "HALL-A",
        "event_date": "2026-11-26T19:00:00Z",
        "pricing": {"CAT1": 100},
        "total_seats": 10,
    }
    body.update(over)
    return body


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# (method, path, body, expected error code, the field the answer must name or None)
BAD: list[tuple[str, str, Any, str, str | None]] = [
    ("POST", "/events", b"{oops", "VALIDATION_ERROR", None),
    ("POST", "/events", b'"a string"', "VALIDATION_ERROR", None),
    ("POST", "/events", b"", "VALIDATION_ERROR", "name"),
    ("POST", "/events", without(event(), "name"), "VALIDATION_ERROR", "name"),
    ("POST", "/events", without(event(), "venue"), "VALIDATION_ERROR", "venue"),
    ("POST", "/events", without(event(), "hall_id"), "VALIDATION_ERROR", "hall_id"),
    ("POST", "/events", without(event(), "event_date"), "VALIDATION_ERROR", "event_date"),
    ("POST", "/events", without(event(), "pricing"), "VALIDATION_ERROR", "pricing"),
    ("POST", "/events", without(event(), "total_seats"), "VALIDATION_ERROR", "total_seats"),
    ("POST", "/events", event(event_id="E1"), "INVALID_UUID", "event_id"),
    ("POST", "/events", event(name=""), "VALIDATION_ERROR", "name"),
    ("POST", "/events", event(name="   "), "VALIDATION_ERROR", "name"),
    ("POST", "/events", event(name="a\u0000b"), "VALIDATION_ERROR", "name"),
    ("POST", "/events", event(name=HUGE), "VALIDATION_ERROR", "name"),
    ("POST", "/events", event(name=7), "VALIDATION_ERROR", "name"),
    ("POST", "/events", event(venue="Arena"), "VALIDATION_ERROR", "venue"),
    ("POST", "/events", event(venue={}), "VALIDATION_ERROR", "venue.name"),
    ("POST", "/events", event(venue={"name": HUGE}), "VALIDATION_ERROR", "venue.name"),
    (
        "POST",
        "/events",
        event(venue={"name": "A", "address": HUGE}),
        "VALIDATION_ERROR",
        "venue.address",
    ),
    ("POST", "/events", event(hall_id="hall-a"), "VALIDATION_ERROR", "hall_id"),
    ("POST", "/events", event(hall_id="-HALL"), "VALIDATION_ERROR", "hall_id"),
    ("POST", "/events", event(hall_id="H" * 21), "VALIDATION_ERROR", "hall_id"),
    ("POST", "/events", event(hall_id=""), "VALIDATION_ERROR", "hall_id"),
    ("POST", "/events", event(event_date="tomorrow"), "VALIDATION_ERROR", "event_date"),
    ("POST", "/events", event(event_date=None), "VALIDATION_ERROR", "event_date"),
    ("POST", "/events", event(doors_open="soon"), "VALIDATION_ERROR", "doors_open"),
    ("POST", "/events", event(doors_close=[]), "VALIDATION_ERROR", "doors_close"),
    ("POST", "/events", event(pricing={}), "VALIDATION_ERROR", "pricing"),
    ("POST", "/events", event(pricing=[100]), "VALIDATION_ERROR", "pricing"),
    ("POST", "/events", event(pricing={"CAT1": -1}), "VALIDATION_ERROR", "pricing.CAT1"),
    ("POST", "/events", event(pricing={"CAT1": 1.5}), "VALIDATION_ERROR", "pricing.CAT1"),
    ("POST", "/events", event(pricing={"CAT1": "100"}), "VALIDATION_ERROR", "pricing.CAT1"),
    ("POST", "/events", event(pricing={"": 1}), "VALIDATION_ERROR", "pricing..[key]"),
    (
        "POST",
        "/events",
        event(category_rows={"CAT1": "A"}),
        "VALIDATION_ERROR",
        "category_rows.CAT1",
    ),
    ("POST", "/events", event(total_seats=0), "VALIDATION_ERROR", "total_seats"),
    ("POST", "/events", event(total_seats=100_001), "VALIDATION_ERROR", "total_seats"),
    ("POST", "/events", event(total_seats="10"), "VALIDATION_ERROR", "total_seats"),
    ("POST", "/events", event(total_seats=10.0), "VALIDATION_ERROR", "total_seats"),
    ("POST", "/events", event(extra_field=1), "VALIDATION_ERROR", "extra_field"),
    ("GET", "/events/nope", None, "INVALID_UUID", "event_id"),
    ("GET", "/events?per_page=1000", None, "VALIDATION_ERROR", "per_page"),
    ("POST", "/gates", {}, "VALIDATION_ERROR", "hall_id"),
    ("POST", "/gates", {"hall_id": "HALL-A"}, "VALIDATION_ERROR", "name"),
    ("POST", "/gates", {"hall_id": "hall a", "name": "N"}, "VALIDATION_ERROR", "hall_id"),
    ("POST", "/gates", {"hall_id": "HALL-A", "name": HUGE}, "VALIDATION_ERROR", "name"),
    ("POST", "/gates", {"hall_id": "HALL-A", "name": "  "}, "VALIDATION_ERROR", "name"),
    ("POST", "/gates", {"hall_id": 5, "name": "N"}, "VALIDATION_ERROR", "hall_id"),
    ("POST", "/gates", b"hall_id=HALL-A", "VALIDATION_ERROR", None),
    ("POST", "/gates/authenticate", {}, "VALIDATION_ERROR", "device_token"),
    ("POST", "/gates/authenticate", {"device_token": ""}, "VALIDATION_ERROR", "device_token"),
    ("POST", "/gates/authenticate", {"device_token": HUGE}, "VALIDATION_ERROR", "device_token"),
    ("POST", "/gates/authenticate", {"device_token": 1}, "VALIDATION_ERROR", "device_token"),
    ("GET", "/gates?hall_id=a", None, "VALIDATION_ERROR", "hall_id"),
    ("GET", "/gates/12", None, "INVALID_UUID", "gate_id"),
    ("PATCH", "/gates/12", {"enabled": False}, "INVALID_UUID", "gate_id"),
    ("PATCH", f"/gates/{U}", {}, "VALIDATION_ERROR", "enabled"),
    ("PATCH", f"/gates/{U}", {"enabled": "no"}, "VALIDATION_ERROR", "enabled"),
    ("PATCH", f"/gates/{U}", {"enabled": 0}, "VALIDATION_ERROR", "enabled"),
    ("PATCH", f"/gates/{U}", b"{", "VALIDATION_ERROR", None),
]


async def snapshot(api: Api) -> tuple[list[Any], ...]:
    return tuple([await api.rows(f"SELECT * FROM {t}") for t in ("venues", "events", "gates")])


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "field"),
    BAD,
    ids=[f"{m} {p[:30]} {i}" for i, (m, p, *_) in enumerate(BAD)],
)
async def test_malformed_input_is_a_400_naming_the_field(
    api: Api, method: str, path: str, body: Any, code: str, field: str | None
) -> None:
    # real rows exist, so a route that wrote anything would change the snapshot
    status, made = await api.call("POST", "/events", event(event_id=U))
    assert status == 201, made
    status, gate = await api.call("POST", "/gates", {"hall_id": "HALL-A", "name": "G"})
    assert status == 201, gate
    await api.call("PATCH", f"/gates/{gate['data']['gate_id']}", {"enabled": True})
    before = await snapshot(api)

    status, err = await api.call(method, path, body)

    assert status == 400, err
    assert err["success"] is False
    assert err["error_code"] == code
    if field is not None:
        assert err["details"]["field"] == field
        assert field in err["message"]
    assert await snapshot(api) == before


async def test_the_internal_credential_is_required(api: Api) -> None:
    for method, path in [
        ("GET", "/events"),
        ("POST", "/events"),
        ("GET", f"/events/{U}"),
        ("POST", "/gates"),
        ("POST", "/gates/authenticate"),
        ("PATCH", f"/gates/{U}"),
    ]:
        for headers in ({}, {"X-Internal-Token": "wrong"}):
            async with api.client.request(method, path, headers=headers, json=event()) as resp:
                body = await resp.json()
                assert (resp.status, body["error_code"]) == (401, "UNAUTHORIZED")
    assert await api.count("events") == 0
    assert await api.count("gates") == 0
    # with it, the same call goes through
    status, _ = await api.call("GET", "/events", headers={"X-Internal-Token": TOKEN})
    assert status == 200


async def test_health_and_metrics_need_no_credential(api: Api) -> None:
    async with api.client.get("/health") as resp:
        body = await resp.json()
        assert resp.status == 200
        assert body == {"status": "healthy", "service": "events", "checks": {"database": "ok"}}
    await api.call("GET", f"/events/{U}")
    async with api.client.get("/metrics") as resp:
        text = await resp.text()
        assert resp.status == 200
        assert "/events/{event_id}" in text


ODD_VALUES: list[Any] = [
    None,
    "",
    "\u0000",
    "bad\u0000name",
    HUGE,
    -1,
    0,
    10**40,
    1e308,
    True,
    [],
    {},
    {"nested": {"deeper": [1, 2]}},
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2026-02-30T10:00:00Z",
]

VALID_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/events", {**event(), "doors_open": "2026-11-26T17:00:00Z", "category_rows": {}}),
    ("POST", "/gates", {"hall_id": "HALL-A", "name": "G"}),
    ("POST", "/gates/authenticate", {"device_token": "abc"}),
    ("PATCH", f"/gates/{U}", {"enabled": True}),
]


@pytest.mark.parametrize(("method", "path", "valid"), VALID_BODIES)
async def test_odd_values_in_every_field_never_break_the_service(
    api: Api, method: str, path: str, valid: dict[str, Any]
) -> None:
    fields = [*valid, "venue.name", "venue.address"] if path == "/events" else list(valid)
    for field in fields:
        for value in ODD_VALUES:
            body = {**valid, "venue": {"name": "Arena"}} if path == "/events" else dict(valid)
            if field.startswith("venue."):
                body["venue"] = {"name": "Arena", field.split(".")[1]: value}
            else:
                body[field] = value
            status, answer = await api.call(method, path, body)
            assert status < 500, (field, value, answer)
            assert answer["success"] is (status < 400), (field, value, answer)
