"""A bad body is one 400 naming every wrong field at once (details.fields), and a field the
endpoint does not know is refused by name, not ignored (issue 13); nothing is written."""

from __future__ import annotations

import uuid
from pathlib import Path

from cluster import running_cluster


async def test_register_names_every_wrong_field_in_one_answer(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        before = await c.row_counts()
        status, body = await c.call(
            "POST",
            "/api/auth/register",
            json_body={"password": "short", "phone": True, "nickname": "ann"},
        )
        assert (status, body["error_code"]) == (400, "VALIDATION_ERROR")
        fields = body["details"]["fields"]
        assert set(fields) == {"email", "password", "phone", "nickname"}, fields
        assert fields["nickname"] == "unknown field"
        assert "8 characters" in fields["password"]
        for name in fields:
            assert f"{name}: " in body["message"]
        assert body["details"]["field"] == "email"  # the first, as before
        assert await c.row_counts() == before


async def test_an_unknown_field_is_refused_by_name_even_when_the_rest_is_right(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as c:
        admin = await c.make_user(role="admin")
        before = await c.row_counts()
        event = {
            "name": "Gala",
            "venue": {"name": "Hall", "adress": "misspelt"},
            "hall_id": "HALL-A",
            "event_date": "2099-01-01T20:00:00Z",
            "pricing": {"STD": 10},
            "seats": {"rows": 1, "seats_per_row": 2},
            "capacity": 2,
        }
        status, body = await c.call(
            "POST", "/api/admin/events", json_body=event, token=admin["token"]
        )
        assert status == 400, body
        assert body["details"]["fields"] == {
            "venue.adress": "unknown field",
            "capacity": "unknown field",
        }
        assert await c.row_counts() == before
        del event["capacity"], event["venue"]["adress"]
        status, body = await c.call(
            "POST", "/api/admin/events", json_body=event, token=admin["token"]
        )
        assert status == 201, body


async def test_a_wrong_uuid_among_others_keeps_its_code(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        status, body = await c.call(
            "POST",
            "/api/auth/verify-registration",
            json_body={"user_id": "not-a-uuid", "otp_code": "12ab56", "extra": str(uuid.uuid4())},
        )
        assert (status, body["error_code"]) == (400, "INVALID_UUID")
        assert set(body["details"]["fields"]) == {"user_id", "otp_code", "extra"}
