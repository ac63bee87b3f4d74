"""Every public endpoint built so far, fed malformed input: a 400 naming the problem, nothing
written, never a 500."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cluster import running_cluster

HUGE = "x" * 100_000
GOOD_UUID = str(uuid.uuid4())

# (method, path, who, malformed bodies as (raw text or JSON value, field the message must name))
CASES: list[tuple[str, str, str, list[tuple[object, str]]]] = [
    (
        "POST",
        "/api/auth/register",
        "anon",
        [
            ({"password": "a long password"}, "email"),
            ({"email": "a@b.co"}, "password"),
            ({"email": 5, "password": "a long password"}, "email"),
            ({"email": "not-an-email", "password": "a long password"}, "email"),
            ({"email": "a@b.co", "password": "short"}, "password"),
            ({"email": HUGE + "@b.co", "password": "a long password"}, "email"),
            ({"email": "a@b.co", "password": HUGE}, "password"),
            ({"email": "a@b.co", "password": "a long password", "phone": True}, "phone"),
        ],
    ),
    (
        "POST",
        "/api/auth/verify-registration",
        "anon",
        [
            ({"otp_code": "123456"}, "user_id"),
            ({"user_id": "not-a-uuid", "otp_code": "123456"}, "user_id"),
            ({"user_id": GOOD_UUID, "otp_code": 123456}, "otp_code"),
            ({"user_id": GOOD_UUID, "otp_code": "12ab56"}, "otp_code"),
        ],
    ),
    (
        "POST",
        "/api/auth/login",
        "anon",
        [
            ({"email": "a@b.co"}, "password"),
            ({"email": ["a@b.co"], "password": "x"}, "email"),
            ({"email": HUGE, "password": "x"}, "email"),
        ],
    ),
    (
        "POST",
        "/api/otp/resend",
        "anon",
        [
            ({"reference_id": GOOD_UUID}, "context"),
            ({"context": "nonsense", "reference_id": GOOD_UUID}, "context"),
            ({"context": "registration", "reference_id": "123"}, "reference_id"),
        ],
    ),
    (
        "POST",
        "/api/admin/events",
        "admin",
        [
            ({}, "name"),
            (
                {
                    "name": "x",
                    "venue": {"name": "v"},
                    "hall_id": "hall a",
                    "event_date": "2030-01-01T00:00:00Z",
                    "pricing": {"A": 1},
                    "seats": {"rows": 1, "seats_per_row": 1},
                },
                "hall_id",
            ),
            (
                {
                    "name": "x",
                    "venue": {"name": "v"},
                    "hall_id": "HALL-A",
                    "event_date": "yesterday",
                    "pricing": {"A": 1},
                    "seats": {"rows": 1, "seats_per_row": 1},
                },
                "event_date",
            ),
            (
                {
                    "name": "x",
                    "venue": {"name": "v"},
                    "hall_id": "HALL-A",
                    "event_date": "2030-01-01T00:00:00Z",
                    "pricing": {"A": -5},
                    "seats": {"rows": 1, "seats_per_row": 1},
                },
                "pricing",
            ),
            (
                {
                    "name": "x",
                    "venue": {"name": "v"},
                    "hall_id": "HALL-A",
                    "event_date": "2030-01-01T00:00:00Z",
                    "pricing": {"A": 1},
                    "seats": {"rows": "1", "seats_per_row": 1},
                },
                "seats",
            ),
            (
                {
                    "name": "x",
                    "venue": {"name": "v"},
                    "hall_id": "HALL-A",
                    "event_date": "2030-01-01T00:00:00Z",
                    "pricing": {"A": 1},
                    "seats": {"rows": 1, "seats_per_row": 1, "category_rows": {"B": ["A"]}},
                },
                "category_rows",
            ),
            (
                {
                    "name": HUGE,
                    "venue": {"name": "v"},
                    "hall_id": "HALL-A",
                    "event_date": "2030-01-01T00:00:00Z",
                    "pricing": {"A": 1},
                    "seats": {"rows": 1, "seats_per_row": 1},
                },
                "name",
            ),
        ],
    ),
    (
        "POST",
        "/api/admin/gates",
        "admin",
        [({"name": "g"}, "hall_id"), ({"hall_id": "HALL-A", "name": 7}, "name")],
    ),
    (
        "POST",
        "/api/admin/credits/grant",
        "admin",
        [
            ({"user_id": GOOD_UUID}, "amount"),
            ({"user_id": GOOD_UUID, "amount": "10"}, "amount"),
            ({"user_id": GOOD_UUID, "amount": 0}, "amount"),
            ({"user_id": GOOD_UUID, "amount": 1.5}, "amount"),
            ({"user_id": "nope", "amount": 10}, "user_id"),
        ],
    ),
    (
        "PATCH",
        f"/api/admin/users/{GOOD_UUID}",
        "admin",
        [({"is_flagged": "yes"}, "is_flagged"), ({"role": "root"}, "role")],
    ),
]

ALWAYS_BAD: list[tuple[object, str]] = [("{not json", "JSON"), ([1, 2], "object"), ("", "")]


@pytest.mark.parametrize("method,path,who,bodies", CASES, ids=[c[1] for c in CASES])
async def test_malformed_bodies_are_400_and_write_nothing(
    tmp_path: Path, method: str, path: str, who: str, bodies: list[tuple[object, str]]
) -> None:
    async with running_cluster(tmp_path) as c:
        token = (await c.make_user(role="admin"))["token"] if who == "admin" else None
        before = await c.row_counts()
        for body, field in bodies + ALWAYS_BAD:
            if isinstance(body, str):
                status, answer = await c.call(method, path, data=body, token=token)
            else:
                status, answer = await c.call(method, path, json_body=body, token=token)
            if body == "" and status != 400:
                continue  # an empty body is "no fields": only the endpoints needing fields say 400
            assert status == 400, (path, body, answer)
            assert answer["success"] is False
            assert answer["error_code"] in ("VALIDATION_ERROR", "INVALID_UUID")
            assert field in answer["message"], (path, field, answer["message"])
        assert await c.row_counts() == before


async def test_bad_path_and_query_parameters(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        status, body = await c.call("GET", "/api/events/not-a-uuid")
        assert (status, body["error_code"]) == (400, "INVALID_UUID")
        for query in ("page=0", "page=abc", "per_page=1000", "per_page=-1"):
            status, body = await c.call("GET", f"/api/events?{query}")
            assert status == 400, (query, body)
            assert query.split("=")[0] in body["message"]
        status, body = await c.call("GET", "/api/no-such-route")
        assert (status, body["error_code"]) == (404, "NOT_FOUND")
        status, body = await c.call("POST", "/api/auth/login", data="x" * (2 * 1024 * 1024))
        assert status == 413 and body["error_code"] == "PAYLOAD_TOO_LARGE"
