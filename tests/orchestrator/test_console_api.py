"""What the organiser console reads and switches (api-contract "Additions (turn 2)"): the event
list with sales, gates with last contact and revocation, users found and changed, disputed
transfers, the live dashboard, and event creation with price categories by row ranges — on SQLite
and on the real PostgreSQL, through real HTTP and gRPC between the services."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cluster import running_cluster
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres
from purchase_support import PRICE
from transfer_support import complete_transfer, sold_seat
from verify_support import add_gate, buy, gate_verify, make_event, qr

SERVICES = ("inventory", "users", "orders", "events", "orchestrator")
NO_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    prefix = fresh_postgres_prefix()
    try:
        yield prefix
    finally:
        await drop_prefix_databases(prefix, SERVICES)


ADMIN_CALLS: list[tuple[str, str, Any]] = [
    ("GET", "/api/admin/events", None),
    ("GET", "/api/admin/gates", None),
    ("GET", "/api/admin/gates?hall_id=HALL-A", None),
    ("DELETE", f"/api/admin/gates/{NO_ID}", None),
    ("GET", "/api/admin/users?email=a", None),
    ("PATCH", f"/api/admin/users/{NO_ID}", {"flagged": True}),
    ("GET", "/api/admin/transfers?status=DISPUTED", None),
]


async def test_admin_calls_refuse_customers_and_anonymous(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        customer = await c.make_user()
        staff = await c.make_user(role="staff")
        for method, path, body in ADMIN_CALLS:
            status, answer = await c.call(method, path, json_body=body)
            assert (status, answer["error_code"]) == (401, "UNAUTHORIZED"), path
            for user in (customer, staff):
                status, answer = await c.call(method, path, json_body=body, token=user["token"])
                assert (status, answer["error_code"]) == (403, "FORBIDDEN"), path


async def test_bad_parameters_are_400_and_missing_things_404(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        admin = await c.make_user(role="admin")
        for method, path, field in (
            ("GET", "/api/admin/events?per_page=0", "per_page"),
            ("GET", "/api/admin/gates?hall_id=hall a", "hall_id"),
            ("GET", "/api/admin/users?limit=1000", "limit"),
            ("GET", "/api/admin/transfers?status=ODD", "status"),
            ("DELETE", "/api/admin/gates/not-a-uuid", "gate_id"),
        ):
            status, body = await c.call(method, path, token=admin["token"])
            assert status == 400, (path, body)
            assert field in body["message"], body
        status, body = await c.call("DELETE", f"/api/admin/gates/{NO_ID}", token=admin["token"])
        assert (status, body["error_code"]) == (404, "GATE_NOT_FOUND")
        status, body = await c.call(
            "PATCH", f"/api/admin/users/{NO_ID}", json_body={"role": "staff"}, token=admin["token"]
        )
        assert (status, body["error_code"]) == (404, "USER_NOT_FOUND")


async def test_event_list_with_sales_and_revenue(tmp_path: Path, database_url: str | None) -> None:
    async with running_cluster(tmp_path, database_url=database_url) as c:
        event = await make_event(c, seats=4)
        other = await make_event(c, seats=2, starts_in=timedelta(days=2))
        admin = event["admin"]
        buyer = await buy(c, event["seat_ids"][0])
        await buy(c, event["seat_ids"][1], buyer)
        holder = await c.make_user(credits=500)
        await c.call(
            "POST",
            "/api/reserve",
            token=holder["token"],
            json_body={"seat_id": event["seat_ids"][2]},
        )
        gate = await add_gate(c, admin["token"])
        status, body = await gate_verify(c, gate, await qr(c, buyer["token"], event["seat_ids"][0]))
        assert body["data"]["result"] == "SUCCESS"

        status, body = await c.call("GET", "/api/admin/events", token=admin["token"])
        assert status == 200, body
        rows = {e["event_id"]: e for e in body["data"]}
        assert body["pagination"]["total"] == 2
        first = rows[event["event_id"]]
        figures = {k: first[k] for k in ("total", "sold", "held", "available", "checked_in")}
        assert figures == {"total": 4, "sold": 2, "held": 1, "available": 1, "checked_in": 1}
        assert first["revenue"] == 2 * PRICE
        assert first["status"] == "OPEN"  # starts in an hour: doors open 6 h before
        second = rows[other["event_id"]]
        assert (second["sold"], second["revenue"], second["status"]) == (0, 0, "UPCOMING")

        status, body = await c.call("GET", "/api/admin/events?per_page=1", token=admin["token"])
        assert len(body["data"]) == 1 and body["pagination"]["total_pages"] == 2


async def test_gates_list_revocation_and_last_seen(
    tmp_path: Path, database_url: str | None
) -> None:
    async with running_cluster(tmp_path, database_url=database_url) as c:
        event = await make_event(c, seats=2)
        admin = event["admin"]
        buyer = await buy(c, event["seat_ids"][0])
        gate = await add_gate(c, admin["token"])
        other_hall = await add_gate(c, admin["token"], hall="HALL-B")
        status, body = await c.call("GET", "/api/admin/gates?hall_id=HALL-A", token=admin["token"])
        assert status == 200, body
        [listed] = body["data"]
        assert listed["gate_id"] == gate["gate_id"] and listed["enabled"] is True
        assert listed["last_seen_at"] is None  # never called yet
        assert "device_token" not in listed and not any("token" in k for k in listed)
        _, body = await c.call("GET", "/api/admin/gates", token=admin["token"])
        assert {g["gate_id"] for g in body["data"]} == {gate["gate_id"], other_hall["gate_id"]}

        status, body = await gate_verify(c, gate, await qr(c, buyer["token"], event["seat_ids"][0]))
        assert body["data"]["result"] == "SUCCESS"
        _, body = await c.call("GET", "/api/admin/gates?hall_id=HALL-A", token=admin["token"])
        seen = datetime.fromisoformat(body["data"][0]["last_seen_at"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - seen).total_seconds()) < 60

        status, body = await c.call(
            "DELETE", f"/api/admin/gates/{gate['gate_id']}", token=admin["token"]
        )
        assert status == 200, body
        assert (body["data"]["enabled"], body["data"]["revoked"]) == (False, True)
        # from the very next request on, every gate call says GATE_REVOKED (not a plain 401)
        status, body = await gate_verify(c, gate, "TR1:junk")
        assert (status, body["error_code"]) == (401, "GATE_REVOKED")
        status, body = await c.call("GET", "/api/gate/manifest", token=gate["device_token"])
        assert (status, body["error_code"]) == (401, "GATE_REVOKED")
        item = {
            "scan_id": "s-1",
            "qr_payload": "TR1:x",
            "scanned_at": time.time(),
            "decision": "ADMITTED",
            "result": "SUCCESS",
        }
        status, body = await c.call(
            "POST", "/api/gate/checkins", token=gate["device_token"], json_body={"items": [item]}
        )
        assert (status, body["error_code"]) == (401, "GATE_REVOKED")
        # an unknown token stays a plain 401; the other gate is untouched
        status, body = await gate_verify(c, {"device_token": "trg_unknown"}, "x")
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
        status, body = await c.call("GET", "/api/gate/manifest", token=other_hall["device_token"])
        assert status == 200, body
        _, body = await c.call("GET", "/api/admin/gates?hall_id=HALL-A", token=admin["token"])
        assert body["data"][0]["enabled"] is False
        # revoking twice is the same as once
        status, body = await c.call(
            "DELETE", f"/api/admin/gates/{gate['gate_id']}", token=admin["token"]
        )
        assert (status, body["data"]["enabled"]) == (200, False)


async def test_find_users_flag_and_role(tmp_path: Path, database_url: str | None) -> None:
    async with running_cluster(tmp_path, database_url=database_url) as c:
        admin = await c.make_user(role="admin")
        alice = await c.make_user(credits=40)
        await c.make_user()
        status, body = await c.call(
            "GET", f"/api/admin/users?email={alice['email'].upper()}", token=admin["token"]
        )
        assert status == 200, body
        [found] = body["data"]
        assert found["user_id"] == alice["user_id"] and found["credit_balance"] == 40
        assert (found["flagged"], found["role"], found["verified"]) == (False, "customer", True)
        assert "password_hash" not in found
        # a fragment finds every match; % and _ are literal text, not wildcards
        _, body = await c.call("GET", "/api/admin/users?email=@example.com", token=admin["token"])
        assert len(body["data"]) == 3
        _, body = await c.call("GET", "/api/admin/users?email=%25", token=admin["token"])
        assert body["data"] == []

        url = f"/api/admin/users/{alice['user_id']}"
        status, body = await c.call(
            "PATCH", url, json_body={"flagged": True, "role": "staff"}, token=admin["token"]
        )
        assert status == 200, body
        assert (body["data"]["flagged"], body["data"]["role"]) == (True, "staff")
        _, body = await c.call("GET", "/api/me", token=alice["token"])
        assert (body["data"]["flagged"], body["data"]["role"]) == (True, "staff")
        # the older name still works
        status, body = await c.call(
            "PATCH", url, json_body={"is_flagged": False}, token=admin["token"]
        )
        assert (status, body["data"]["flagged"]) == (200, False)
        before = await c.row_counts()
        for bad, field in (
            ({"flagged": True, "is_flagged": False}, "flagged"),
            ({"flagged": "yes"}, "flagged"),
            ({"role": "root"}, "role"),
        ):
            status, body = await c.call("PATCH", url, json_body=bad, token=admin["token"])
            assert (status, body["error_code"]) == (400, "VALIDATION_ERROR"), body
            assert field in body["message"]
        assert await c.row_counts() == before
        _, body = await c.call("GET", "/api/me", token=alice["token"])
        assert (body["data"]["flagged"], body["data"]["role"]) == (False, "staff")


async def test_disputed_transfers_await_a_decision(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        s = await sold_seat(c)
        tid = await complete_transfer(c, s)
        admin = s["admin"]
        _, body = await c.call("GET", "/api/admin/transfers?status=DISPUTED", token=admin["token"])
        assert body["data"] == []
        status, body = await c.call(
            "POST",
            "/api/transfer/dispute",
            token=s["seller"]["token"],
            json_body={"transfer_id": tid, "reason": "I never agreed"},
        )
        assert status == 200, body
        _, body = await c.call("GET", "/api/admin/transfers?status=DISPUTED", token=admin["token"])
        [disputed] = body["data"]
        assert disputed["transfer_id"] == tid and disputed["dispute_reason"] == "I never agreed"
        assert disputed["seller_email"] == s["seller"]["email"]
        assert disputed["buyer_email"] == s["buyer"]["email"]
        assert disputed["role"] is None and disputed["i_confirmed"] is None
        status, body = await c.call(
            "POST", "/api/transfer/reverse", token=admin["token"], json_body={"transfer_id": tid}
        )
        assert status == 200, body
        _, body = await c.call("GET", "/api/admin/transfers?status=DISPUTED", token=admin["token"])
        assert body["data"] == []


async def test_dashboard_for_the_live_view(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=3)
        admin = event["admin"]
        buyer = await buy(c, event["seat_ids"][0])
        await buy(c, event["seat_ids"][1], buyer)
        status, body = await c.call(
            "POST",
            "/api/admin/gates",
            token=admin["token"],
            json_body={"hall_id": "HALL-A", "name": "Gate 1"},
        )
        busy = body["data"]
        quiet = await add_gate(c, admin["token"])
        _, answer = await gate_verify(c, busy, await qr(c, buyer["token"], event["seat_ids"][0]))
        assert answer["data"]["result"] == "SUCCESS"
        url = f"/api/admin/events/{event['event_id']}/dashboard"
        status, body = await c.call("GET", url, token=admin["token"])
        assert status == 200, body
        data = body["data"]
        by_gate = {g["gate_id"]: (g["name"], g["count"]) for g in data["admissions"]["by_gate"]}
        assert by_gate == {busy["gate_id"]: ("Gate 1", 1), quiet["gate_id"]: (quiet["name"], 0)}
        recent = data["admissions"]["recent_minutes"]
        assert len(recent) == data["admissions"]["window_minutes"] == 30
        assert (
            sum(m["count"] for m in recent) == 1 and recent[-1]["count"] + recent[-2]["count"] == 1
        )
        assert [m["minute"] for m in recent] == sorted(m["minute"] for m in recent)
        assert data["sales"] == {"sold": 2, "held": 0, "available": 1, "orders_confirmed": 2}
        assert data["revenue"] == 2 * PRICE and data["admissions"]["total"] == 1


def event_body(**changes: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=5)
    body: dict[str, Any] = {
        "name": "Console Night",
        "venue": {"name": "River Hall", "address": "1 Bank St"},
        "hall_id": "HALL-C",
        "event_date": start.isoformat(),
        "doors_open": (start - timedelta(hours=1)).isoformat(),
        "doors_close": (start + timedelta(hours=3)).isoformat(),
        "pricing": {"FRONT": 500, "MIDDLE": 300, "BACK": 100},
        "seats": {
            "rows": 6,
            "seats_per_row": 3,
            "category_rows": {"FRONT": ["A-B"], "MIDDLE": ["C", "D-E"]},
        },
    }
    body.update(changes)
    return body


async def test_create_event_with_price_categories_by_row_range(
    tmp_path: Path, database_url: str | None
) -> None:
    async with running_cluster(tmp_path, database_url=database_url) as c:
        admin = await c.make_user(role="admin")
        status, body = await c.call(
            "POST", "/api/admin/events", json_body=event_body(), token=admin["token"]
        )
        assert status == 201, body
        assert body["data"]["seats_created"] == 18
        _, body = await c.call("GET", f"/api/events/{body['data']['event_id']}")
        price = {s["row"]: (s["category"], s["price"]) for s in body["data"]["seats"]}
        assert price == {
            "A": ("FRONT", 500),
            "B": ("FRONT", 500),
            "C": ("MIDDLE", 300),
            "D": ("MIDDLE", 300),
            "E": ("MIDDLE", 300),
            "F": ("BACK", 100),  # the category no range claims takes the other rows
        }
        assert body["data"]["doors_open"] < body["data"]["event_date"] < body["data"]["doors_close"]


async def test_bad_event_bodies_name_the_field_and_create_nothing(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        admin = await c.make_user(role="admin")
        start = datetime.now(UTC) + timedelta(days=5)
        layout = {"rows": 6, "seats_per_row": 3}
        cases = [
            (
                event_body(seats={**layout, "category_rows": {"FRONT": ["A-Z"]}}),
                "category_rows.FRONT",
            ),
            (
                event_body(seats={**layout, "category_rows": {"FRONT": ["C-A"]}}),
                "category_rows.FRONT",
            ),
            (
                event_body(seats={**layout, "category_rows": {"FRONT": ["A-C"], "BACK": ["C"]}}),
                "category_rows.BACK",
            ),
            (event_body(seats={**layout, "category_rows": {"VIP": ["A"]}}), "category_rows.VIP"),
            (
                event_body(
                    doors_open=(start + timedelta(hours=4)).isoformat(),
                    doors_close=(start - timedelta(hours=4)).isoformat(),
                ),
                "doors_close",
            ),
            (event_body(event_date="1850-01-01T00:00:00Z"), "event_date"),
            (event_body(seats={"rows": 0, "seats_per_row": 3}), "seats.rows"),
            (event_body(seats={"rows": 2, "seats_per_row": "3"}), "seats.seats_per_row"),
            (event_body(pricing={}), "pricing"),
            (event_body(hall_id="hall c"), "hall_id"),
        ]
        before = await c.row_counts()
        for body, field in cases:
            status, answer = await c.call(
                "POST", "/api/admin/events", json_body=body, token=admin["token"]
            )
            assert (status, answer["error_code"]) == (400, "VALIDATION_ERROR"), (field, answer)
            assert field in answer["message"], (field, answer)
        assert await c.row_counts() == before


async def test_event_pages_never_show_owners(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=3)
        buyer = await buy(c, event["seat_ids"][0])
        holder = await c.make_user(credits=500)
        await c.call(
            "POST",
            "/api/reserve",
            token=holder["token"],
            json_body={"seat_id": event["seat_ids"][1]},
        )
        for path in ("/api/events", f"/api/events/{event['event_id']}"):
            for token in (None, holder["token"]):
                status, body = await c.call("GET", path, token=token)
                assert status == 200
                text = json.dumps(body)
                for secret in (
                    buyer["user_id"],
                    buyer["email"],
                    holder["user_id"],
                    holder["email"],
                ):
                    assert secret not in text, (path, secret)
                assert "owner" not in text and "held_by" not in text and "hold_id" not in text
        _, body = await c.call("GET", f"/api/events/{event['event_id']}")
        statuses = sorted(s["status"] for s in body["data"]["seats"])
        assert statuses == ["AVAILABLE", "HELD", "SOLD"]
