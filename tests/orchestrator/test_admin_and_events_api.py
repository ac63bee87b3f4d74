"""Operator calls and the public event views, through the orchestrator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cluster import running_cluster

EVENT = {
    "name": "Gala Night",
    "venue": {"name": "Harbour Hall", "address": "2 Quay"},
    "hall_id": "HALL-B",
    "event_date": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
    "pricing": {"CAT1": 300, "CAT2": 120},
    "seats": {"rows": 3, "seats_per_row": 4, "category_rows": {"CAT1": ["A"]}},
}


async def test_admin_creates_event_and_the_public_sees_it(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        admin = await c.make_user(role="admin")
        status, body = await c.call(
            "POST", "/api/admin/events", json_body=EVENT, token=admin["token"]
        )
        assert status == 201, body
        event_id = body["data"]["event_id"]
        assert body["data"]["seats_created"] == 12

        status, body = await c.call("GET", "/api/events")
        assert status == 200
        listed = {e["event_id"]: e for e in body["data"]}
        assert listed[event_id]["available_seats"] == 12
        assert listed[event_id]["hall_id"] == "HALL-B"
        assert listed[event_id]["venue"]["name"] == "Harbour Hall"
        assert body["pagination"]["total"] == 1

        status, body = await c.call("GET", f"/api/events/{event_id}")
        assert status == 200
        seats = body["data"]["seats"]
        assert len(seats) == 12
        by_row = {(s["row"], s["number"]): s for s in seats}
        assert by_row[("A", 1)]["category"] == "CAT1" and by_row[("A", 1)]["price"] == 300
        assert by_row[("C", 4)]["category"] == "CAT2" and by_row[("C", 4)]["price"] == 120
        # The public seat map never shows who owns or holds a seat.
        assert not any(k for s in seats for k in s if "owner" in k or "held" in k or "hold" in k)

        status, body = await c.call("GET", "/api/events/00000000-0000-4000-8000-000000000000")
        assert (status, body["error_code"]) == (404, "EVENT_NOT_FOUND")


async def test_admin_only_calls_refuse_customers_and_anonymous(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        customer = await c.make_user()
        before = await c.row_counts()
        for path, body in (
            ("/api/admin/events", EVENT),
            ("/api/admin/gates", {"hall_id": "HALL-A", "name": "Gate 1"}),
            ("/api/admin/credits/grant", {"user_id": customer["user_id"], "amount": 10}),
        ):
            status, answer = await c.call("POST", path, json_body=body, token=customer["token"])
            assert (status, answer["error_code"]) == (403, "FORBIDDEN"), path
            status, answer = await c.call("POST", path, json_body=body)
            assert (status, answer["error_code"]) == (401, "UNAUTHORIZED"), path
            # Authentication is checked before the body: a bad token with a bad body is still 401.
            status, answer = await c.call("POST", path, data="{nonsense", token="not-a-token")
            assert (status, answer["error_code"]) == (401, "UNAUTHORIZED"), path
        assert await c.row_counts() == before


async def test_gate_and_credit_grant(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        admin = await c.make_user(role="admin")
        customer = await c.make_user()
        status, body = await c.call(
            "POST",
            "/api/admin/gates",
            json_body={"hall_id": "HALL-A", "name": "North 1"},
            token=admin["token"],
        )
        assert status == 201, body
        assert body["data"]["device_token"] and body["data"]["hall_id"] == "HALL-A"

        grant = {"user_id": customer["user_id"], "amount": 250}
        headers = {"Idempotency-Key": "grant-once"}
        for _ in range(2):  # the same key twice grants once
            status, body = await c.call(
                "POST",
                "/api/admin/credits/grant",
                json_body=grant,
                token=admin["token"],
                headers=headers,
            )
            assert status == 200, body
        assert body["data"]["credit_balance"] == 250
        status, body = await c.call("GET", "/api/credits/balance", token=customer["token"])
        assert body["data"]["credit_balance"] == 250

        status, body = await c.call(
            "POST",
            "/api/admin/credits/grant",
            json_body={"user_id": "00000000-0000-4000-8000-000000000000", "amount": 5},
            token=admin["token"],
        )
        assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")
