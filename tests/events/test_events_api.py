"""Venues and events over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.events.conftest import Api


def new_event(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "name": "The Eras Tour",
        "venue": {"name": "Indoor Stadium", "address": "2 Stadium Walk"},
        "hall_id": "HALL-A",
        "event_date": "2026-11-26T19:00:00Z",
        "pricing": {"CAT1": 350, "CAT2": 250, "CAT3": 180},
        "category_rows": {"CAT1": ["A", "B"], "CAT2": ["C"]},
        "total_seats": 500,
    }
    body.update(over)
    return body


async def make_event(api: Api, **over: Any) -> dict[str, Any]:
    status, body = await api.call("POST", "/events", new_event(**over))
    assert status == 201, body
    return body["data"]


async def test_create_then_get(api: Api) -> None:
    body = new_event()
    status, created = await api.call("POST", "/events", body)
    assert status == 201
    event = created["data"]
    assert event["event_id"] == body["event_id"]
    assert event["name"] == "The Eras Tour"
    assert event["venue"]["name"] == "Indoor Stadium"
    assert event["venue"]["address"] == "2 Stadium Walk"
    uuid.UUID(event["venue"]["venue_id"])
    assert event["hall_id"] == "HALL-A"
    assert event["event_date"] == "2026-11-26T19:00:00Z"
    # the doors window defaults to six hours either side of the start
    assert event["doors_open"] == "2026-11-26T13:00:00Z"
    assert event["doors_close"] == "2026-11-27T01:00:00Z"
    assert event["pricing"] == {"CAT1": 350, "CAT2": 250, "CAT3": 180}
    assert event["category_rows"] == {"CAT1": ["A", "B"], "CAT2": ["C"]}
    assert event["total_seats"] == 500
    assert event["created_at"].endswith("Z")
    status, got = await api.call("GET", f"/events/{body['event_id']}")
    assert (status, got["data"]) == (200, event)


async def test_event_id_is_optional(api: Api) -> None:
    body = new_event()
    del body["event_id"]
    del body["category_rows"]
    status, created = await api.call("POST", "/events", body)
    assert status == 201
    uuid.UUID(created["data"]["event_id"])
    assert created["data"]["category_rows"] == {}


async def test_times_are_stored_in_utc(api: Api) -> None:
    event = await make_event(
        api,
        event_date="2026-11-26T19:00:00+08:00",
        doors_open="2026-11-26T17:30:00+08:00",
        doors_close="2026-11-26T15:00:00",  # no zone: read as UTC
    )
    assert event["event_date"] == "2026-11-26T11:00:00Z"
    assert event["doors_open"] == "2026-11-26T09:30:00Z"
    assert event["doors_close"] == "2026-11-26T15:00:00Z"
    _, got = await api.call("GET", f"/events/{event['event_id']}")
    assert got["data"]["event_date"] == "2026-11-26T11:00:00Z"


@pytest.mark.parametrize(
    ("doors", "field"),
    [
        (
            {"doors_open": "2026-11-26T20:00:00Z", "doors_close": "2026-11-26T18:00:00Z"},
            "doors_close",
        ),
        (
            {"doors_open": "2026-11-26T18:00:00Z", "doors_close": "2026-11-26T18:00:00Z"},
            "doors_close",
        ),
        ({"doors_open": "2026-11-27T02:00:00Z"}, "doors_open"),
        ({"doors_close": "2026-11-26T12:00:00Z"}, "doors_close"),
    ],
)
async def test_doors_must_open_before_they_close(
    api: Api, doors: dict[str, str], field: str
) -> None:
    status, err = await api.call("POST", "/events", new_event(**doors))
    assert (status, err["error_code"], err["details"]["field"]) == (400, "VALIDATION_ERROR", field)
    assert await api.count("events") == 0
    assert await api.count("venues") == 0


async def test_category_rows_need_a_priced_category(api: Api) -> None:
    status, err = await api.call("POST", "/events", new_event(category_rows={"VIP": ["A"]}))
    assert (status, err["details"]["field"]) == (400, "category_rows.VIP")
    assert await api.count("events") == 0


async def test_venue_is_found_or_created_by_name(api: Api) -> None:
    a = await make_event(api)
    b = await make_event(api, venue={"name": "Indoor Stadium"})
    c = await make_event(api, venue={"name": "Expo Hall 3"})
    assert a["venue"]["venue_id"] == b["venue"]["venue_id"]
    assert b["venue"]["address"] == "2 Stadium Walk"  # the existing venue, unchanged
    assert c["venue"]["venue_id"] != a["venue"]["venue_id"]
    assert await api.count("venues") == 2


async def test_create_is_idempotent_by_event_id(api: Api) -> None:
    body = new_event()
    first = await api.call("POST", "/events", body)
    again = await api.call("POST", "/events", body)
    assert (first[0], again[0]) == (201, 200)
    assert again[1]["data"] == first[1]["data"]
    status, err = await api.call("POST", "/events", {**body, "pricing": {"CAT1": 1, "CAT2": 2}})
    assert (status, err["error_code"], err["details"]["field"]) == (
        409,
        "IDEMPOTENCY_CONFLICT",
        "pricing",
    )
    assert await api.count("events") == 1


async def test_unknown_event_is_not_found(api: Api) -> None:
    status, err = await api.call("GET", f"/events/{uuid.uuid4()}")
    assert (status, err["error_code"]) == (404, "EVENT_NOT_FOUND")


async def test_pagination(api: Api) -> None:
    made = [await make_event(api, event_date=f"2026-12-0{d}T19:00:00Z") for d in (5, 3, 1, 4, 2)]
    by_date = sorted(made, key=lambda e: e["event_date"])

    async def page(query: str) -> tuple[list[str], dict[str, int]]:
        status, body = await api.call("GET", f"/events?{query}")
        assert status == 200, body
        return [e["event_id"] for e in body["data"]], body["pagination"]

    ids, meta = await page("page=1&per_page=2")
    assert ids == [e["event_id"] for e in by_date[:2]]
    assert meta == {"page": 1, "per_page": 2, "total": 5, "total_pages": 3}
    ids, meta = await page("page=3&per_page=2")
    assert ids == [by_date[4]["event_id"]]
    ids, meta = await page("page=4&per_page=2")
    assert ids == [] and meta["total"] == 5
    ids, meta = await page("")
    assert len(ids) == 5 and meta == {"page": 1, "per_page": 20, "total": 5, "total_pages": 1}
    ids, meta = await page("per_page=100")
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=1.5", "per_page"),
        ("hall_id=hall a", "hall_id"),
        ("sort=name", "sort"),
    ],
)
async def test_bad_pagination_is_a_400(api: Api, query: str, field: str) -> None:
    status, err = await api.call("GET", f"/events?{query}")
    assert (status, err["error_code"], err["details"]["field"]) == (400, "VALIDATION_ERROR", field)


async def test_events_in_a_hall(api: Api) -> None:
    a = await make_event(api, hall_id="HALL-A")
    b = await make_event(api, hall_id="HALL-B")
    a2 = await make_event(api, hall_id="HALL-A", event_date="2026-11-27T19:00:00Z")
    status, body = await api.call("GET", "/events?hall_id=HALL-A")
    assert status == 200
    assert [e["event_id"] for e in body["data"]] == [a["event_id"], a2["event_id"]]
    assert body["pagination"]["total"] == 2
    _, body = await api.call("GET", "/events?hall_id=HALL-B")
    assert [e["event_id"] for e in body["data"]] == [b["event_id"]]
    _, body = await api.call("GET", "/events?hall_id=HALL-C")
    assert body["data"] == [] and body["pagination"]["total"] == 0
