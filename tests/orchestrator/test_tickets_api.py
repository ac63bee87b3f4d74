"""GET /api/tickets from current ownership and GET /api/tickets/{seat_id}/qr (owner only, SOLD only)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

from cluster import running_cluster
from verify_support import add_gate, buy, gate_verify, keyring, make_event, qr


async def test_tickets_follow_ownership(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=3)
        ids = event["seat_ids"]
        buyer = await buy(c, ids[0])
        await buy(c, ids[1], buyer)
        status, body = await c.call("GET", "/api/tickets", token=buyer["token"])
        assert status == 200, body
        tickets = body["data"]
        assert [t["seat_id"] for t in tickets] == ids[:2]
        assert all(t["status"] == "SOLD" for t in tickets)
        assert tickets[0]["event"]["event_id"] == event["event_id"]
        assert tickets[0]["event"]["hall_id"] == "HALL-A" and tickets[0]["event"]["name"]
        assert (tickets[0]["row"], tickets[0]["number"]) == ("A", 1)

        # checked in: still listed, as CHECKED_IN
        gate = await add_gate(c, event["admin"]["token"])
        status, answer = await gate_verify(c, gate, await qr(c, buyer["token"], ids[1]))
        assert answer["data"]["result"] == "SUCCESS"
        # a change of owner moves the ticket at once
        other = await c.make_user()
        await c.backends.inventory.update_owner(ids[0], buyer["user_id"], other["user_id"])
        status, body = await c.call("GET", "/api/tickets", token=buyer["token"])
        assert [(t["seat_id"], t["status"]) for t in body["data"]] == [(ids[1], "CHECKED_IN")]
        assert body["data"][0]["checked_in_at"]
        status, body = await c.call("GET", "/api/tickets", token=other["token"])
        assert [t["seat_id"] for t in body["data"]] == [ids[0]]
        status, body = await c.call("GET", "/api/tickets")
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")


async def test_qr_for_the_owner_of_a_sold_seat_only(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=3)
        ids = event["seat_ids"]
        buyer = await buy(c, ids[0])
        before = time.time()
        status, body = await c.call("GET", f"/api/tickets/{ids[0]}/qr", token=buyer["token"])
        assert status == 200, body
        data = body["data"]
        assert data["ttl_seconds"] == 60
        generated = datetime.fromisoformat(data["generated_at"].replace("Z", "+00:00"))
        expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
        assert (expires - generated).total_seconds() == 60
        assert int(before) <= generated.timestamp() <= time.time()
        verdict = keyring(c).verify(data["qr_payload"], time.time())
        assert verdict.ok and verdict.claims is not None
        assert (verdict.claims.seat_id, verdict.claims.owner_epoch) == (ids[0], 1)
        assert data["qr_payload"].startswith("TR1:") and len(data["qr_payload"]) == 139

        stranger = await c.make_user()
        status, body = await c.call("GET", f"/api/tickets/{ids[0]}/qr", token=stranger["token"])
        assert (status, body["error_code"]) == (403, "NOT_SEAT_OWNER")
        status, body = await c.call("GET", f"/api/tickets/{ids[1]}/qr", token=buyer["token"])
        assert (status, body["error_code"]) == (403, "NOT_SEAT_OWNER")  # nobody owns it
        status, body = await c.call("GET", f"/api/tickets/{uuid.uuid4()}/qr", token=buyer["token"])
        assert (status, body["error_code"]) == (404, "SEAT_NOT_FOUND")
        status, body = await c.call("GET", "/api/tickets/nope/qr", token=buyer["token"])
        assert (status, body["error_code"]) == (400, "INVALID_UUID")

        gate = await add_gate(c, event["admin"]["token"])
        status, answer = await gate_verify(c, gate, await qr(c, buyer["token"], ids[0]))
        assert answer["data"]["result"] == "SUCCESS"
        status, body = await c.call("GET", f"/api/tickets/{ids[0]}/qr", token=buyer["token"])
        assert (status, body["error_code"]) == (409, "SEAT_UNAVAILABLE")
