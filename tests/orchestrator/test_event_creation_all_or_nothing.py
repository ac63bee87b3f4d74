"""Creating an event is all or nothing: past the seat limit it is a 400 before anything is
written, and when the seats cannot be made the event is taken back, never listed with 0 seats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central import faults
from tests.cluster import running_cluster

EVENT: dict[str, Any] = {
    "name": "All or nothing",
    "venue": {"name": "Main"},
    "hall_id": "HALL-A",
    "event_date": "2030-01-01T20:00:00+00:00",
    "pricing": {"STANDARD": 10},
}


@pytest.fixture
def disarm() -> Iterator[None]:
    yield
    faults.disarm()


async def _admin(c: Any) -> str:
    admin = await c.make_user(role="admin")
    return str(admin["token"])


async def test_too_many_seats_is_a_400_and_writes_nothing(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        token = await _admin(c)
        before = await c.row_counts()
        body = {**EVENT, "seats": {"rows": 200, "seats_per_row": 500}}
        status, answer = await c.call("POST", "/api/admin/events", json_body=body, token=token)
        assert (status, answer["error_code"]) == (400, "VALIDATION_ERROR"), answer
        assert "at most 10000 seats" in answer["message"]
        assert await c.row_counts() == before


async def test_a_failure_making_the_seats_takes_the_event_back(
    tmp_path: Path, disarm: None
) -> None:
    async with running_cluster(tmp_path) as c:
        token = await _admin(c)
        before = await c.row_counts()
        faults.arm("admin.before_create_seats")
        body = {**EVENT, "seats": {"rows": 2, "seats_per_row": 5}}
        status, _ = await c.call("POST", "/api/admin/events", json_body=body, token=token)
        assert status == 500
        assert await c.row_counts() == before
        status, listed = await c.call("GET", "/api/events")
        assert listed["data"] == []
