"""GET /api/admin/events/{id}/dashboard: seats by status, revenue, admissions per gate and per
minute, conflicts and recent entries."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from cluster import running_cluster
from verify_support import add_gate, buy, gate_verify, make_event, qr


async def test_dashboard_figures(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=5)
        admin = event["admin"]
        ids = event["seat_ids"]
        gate_a = await add_gate(c, admin["token"])
        gate_b = await add_gate(c, admin["token"])
        buyers = [await buy(c, s) for s in ids[:3]]
        holder = await c.make_user(credits=500)
        await c.call("POST", "/api/reserve", token=holder["token"], json_body={"seat_id": ids[3]})
        p0 = await qr(c, buyers[0]["token"], ids[0])
        assert (await gate_verify(c, gate_a, p0))[1]["data"]["result"] == "SUCCESS"
        p1 = await qr(c, buyers[1]["token"], ids[1])
        assert (await gate_verify(c, gate_b, p1))[1]["data"]["result"] == "SUCCESS"
        assert (await gate_verify(c, gate_b, p0))[1]["data"]["result"] == "DUPLICATE"
        status, body = await c.call(
            "POST",
            "/api/gate/checkins",
            token=gate_b["device_token"],
            json_body={
                "items": [
                    {
                        "scan_id": "off-1",
                        "qr_payload": p0,
                        "scanned_at": time.time() - 1,
                        "decision": "ADMITTED",
                        "result": "SUCCESS",
                    }
                ]
            },
        )
        assert body["data"]["items"][0]["outcome"] == "CONFLICT"
        url = f"/api/admin/events/{event['event_id']}/dashboard"
        for _ in range(100):  # entry logs are written in the background
            status, body = await c.call("GET", url, token=admin["token"])
            assert status == 200, body
            if len(body["data"]["recent_entries"]) >= 4:
                break
            await asyncio.sleep(0.05)
        data = body["data"]
        assert data["seats"] == {
            "total": 5,
            "by_status": {"AVAILABLE": 1, "HELD": 1, "SOLD": 1, "CHECKED_IN": 2},
        }
        assert data["checked_in"] == 2 and data["revenue"] == 300
        by_gate = {g["gate_id"]: g["count"] for g in data["admissions"]["by_gate"]}
        assert by_gate == {gate_a["gate_id"]: 1, gate_b["gate_id"]: 1}
        assert sum(m["count"] for m in data["admissions"]["per_minute"]) == 2
        assert data["conflicts"]["count"] == 1
        assert data["conflicts"]["items"][0]["gate_id"] == gate_b["gate_id"]
        results = sorted(e["result"] for e in data["recent_entries"])
        assert results == ["CONFLICT", "DUPLICATE", "SUCCESS", "SUCCESS"]
        assert data["scans"]["by_mode"] == {"online": 3, "offline": 1}

        status, body = await c.call("GET", url, token=buyers[0]["token"])
        assert (status, body["error_code"]) == (403, "FORBIDDEN")
        status, body = await c.call(
            "GET", f"/api/admin/events/{uuid.uuid4()}/dashboard", token=admin["token"]
        )
        assert (status, body["error_code"]) == (404, "EVENT_NOT_FOUND")
