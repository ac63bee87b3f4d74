"""Every verdict of api-contract "Verification" through POST /api/gate/verify with a real token,
each leaving its entry-log row; the precedence order where two verdicts apply; staff verify."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from cluster import Cluster, running_cluster
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from verify_support import add_gate, buy, entry_logs, gate_verify, keyring, make_event, qr, seat

from proto.ticket_token import sign_token


async def scan(c: Cluster, gate: dict[str, Any], payload: Any) -> tuple[dict[str, Any], Any]:
    """One gate scan: the verdict and its single entry-log row."""
    scan_id = str(uuid.uuid4())
    status, body = await gate_verify(c, gate, payload, scan_id)
    assert status == 200, body
    logs = await entry_logs(c, gate, scan_id)
    assert len(logs) == 1, logs
    entry = logs[0]
    assert (entry.result, entry.gate_id, entry.mode) == (
        body["data"]["result"],
        gate["gate_id"],
        "online",
    )
    assert entry.hall_presented == gate["hall_id"]
    return body["data"], entry


async def test_each_verdict_through_the_gate_endpoint(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=6)
        admin = event["admin"]
        gate = await add_gate(c, admin["token"], "HALL-A")
        other_hall_gate = await add_gate(c, admin["token"], "HALL-B")
        ids = event["seat_ids"]
        buyer = await buy(c, ids[0])
        ring = keyring(c)
        now = time.time()

        # SUCCESS, then DUPLICATE (with when and where)
        payload = await qr(c, buyer["token"], ids[0])
        data, entry = await scan(c, gate, payload)
        assert data["result"] == "SUCCESS", data
        assert data["seat"]["seat_id"] == ids[0] and data["event"]["hall_id"] == "HALL-A"
        assert data["checked_in_at"] and "server_time" in data
        assert entry.seat_id == ids[0] and entry.event_id == event["event_id"]
        assert entry.hall_expected == "HALL-A"
        assert (await seat(c, ids[0])).status == "CHECKED_IN"
        data, entry = await scan(c, gate, payload)
        assert data["result"] == "DUPLICATE"
        assert data["checked_in_gate_id"] == gate["gate_id"] and data["checked_in_at"]

        # UNPAID: an available seat (and a held one)
        data, _ = await scan(c, gate, ring.sign(ids[1], 0, now))
        assert data["result"] == "UNPAID"
        holder = await c.make_user(credits=1000)
        status, _ = await c.call(
            "POST", "/api/reserve", token=holder["token"], json_body={"seat_id": ids[2]}
        )
        assert status == 200
        data, entry = await scan(c, gate, ring.sign(ids[2], 0, now))
        assert data["result"] == "UNPAID" and entry.seat_id == ids[2]

        # NOT_FOUND: a well-signed token for a seat that does not exist
        data, entry = await scan(c, gate, ring.sign(str(uuid.uuid4()), 1, now))
        assert data["result"] == "NOT_FOUND" and entry.result == "NOT_FOUND"

        # WRONG_HALL: the gate's hall comes from its registration
        buyer3 = await buy(c, ids[3])
        data, entry = await scan(c, other_hall_gate, await qr(c, buyer3["token"], ids[3]))
        assert data["result"] == "WRONG_HALL" and data["expected_hall"] == "HALL-A"
        assert (entry.hall_presented, entry.hall_expected) == ("HALL-B", "HALL-A")
        assert (await seat(c, ids[3])).status == "SOLD"

        # EXPIRED and NOT_YET_VALID, decided from the token alone
        s4 = await seat(c, ids[3])
        data, entry = await scan(c, gate, ring.sign(ids[3], s4.owner_epoch, now - 62))
        assert data["result"] == "EXPIRED" and entry.seat_id == ids[3]
        data, _ = await scan(c, gate, ring.sign(ids[3], s4.owner_epoch, now + 30))
        assert data["result"] == "NOT_YET_VALID"

        # TRANSFERRED: the owner changed (epoch bumped), the old owner's token is dead
        old_token = await qr(c, buyer3["token"], ids[3])
        new_owner = await c.make_user()
        await c.backends.inventory.update_owner(ids[3], buyer3["user_id"], new_owner["user_id"])
        data, _ = await scan(c, gate, old_token)
        assert data["result"] == "TRANSFERRED"
        data, _ = await scan(c, gate, await qr(c, new_owner["token"], ids[3]))
        assert data["result"] == "SUCCESS"

        # INVALID: garbage, a forged signature, a tampered token
        data, entry = await scan(c, gate, "hello")
        assert data["result"] == "INVALID" and entry.seat_id == ""
        foreign = sign_token(ids[4], 1, int(now), ring.current_kid, Ed25519PrivateKey.generate())
        data, _ = await scan(c, gate, foreign)
        assert data["result"] == "INVALID"
        assert (await seat(c, ids[0])).status == "CHECKED_IN"


async def test_wrong_date_outside_the_doors_window(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(
            c,
            starts_in=timedelta(days=2),
            doors=(timedelta(days=2) - timedelta(hours=1), timedelta(days=3)),
        )
        gate = await add_gate(c, event["admin"]["token"])
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        data, entry = await scan(c, gate, await qr(c, buyer["token"], seat_id))
        assert data["result"] == "WRONG_DATE"
        assert data["event_date"] and data["doors_open"]
        assert entry.result == "WRONG_DATE"
        assert (await seat(c, seat_id)).status == "SOLD"


async def test_precedence_when_two_verdicts_apply(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=3)
        gate_a = await add_gate(c, event["admin"]["token"], "HALL-A")
        gate_b = await add_gate(c, event["admin"]["token"], "HALL-B")
        ids = event["seat_ids"]
        ring = keyring(c)
        now = time.time()
        buyer = await buy(c, ids[0])
        epoch = (await seat(c, ids[0])).owner_epoch

        # EXPIRED before NOT_FOUND: the token alone decides, nothing is looked up
        data, _ = await scan(c, gate_a, ring.sign(str(uuid.uuid4()), 1, now - 120))
        assert data["result"] == "EXPIRED"
        # TRANSFERRED before WRONG_HALL: an old epoch scanned at a gate of another hall
        data, _ = await scan(c, gate_b, ring.sign(ids[0], epoch - 1, now))
        assert data["result"] == "TRANSFERRED"
        # UNPAID before WRONG_HALL
        data, _ = await scan(c, gate_b, ring.sign(ids[1], 0, now))
        assert data["result"] == "UNPAID"
        # DUPLICATE before WRONG_HALL: admitted at A, then shown at B
        payload = await qr(c, buyer["token"], ids[0])
        data, _ = await scan(c, gate_a, payload)
        assert data["result"] == "SUCCESS"
        data, _ = await scan(c, gate_b, payload)
        assert data["result"] == "DUPLICATE"


async def test_repeated_scan_id_returns_the_first_verdict(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        gate = await add_gate(c, event["admin"]["token"])
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        payload = await qr(c, buyer["token"], seat_id)
        scan_id = "gate-scan-0001"
        status, first = await gate_verify(c, gate, payload, scan_id)
        assert status == 200 and first["data"]["result"] == "SUCCESS"
        status, again = await gate_verify(c, gate, payload, scan_id)
        assert status == 200 and again["data"]["result"] == "SUCCESS"
        assert again["data"]["checked_in_at"] == first["data"]["checked_in_at"]
        # a different scan id is a new scan: DUPLICATE
        status, other = await gate_verify(c, gate, payload, "gate-scan-0002")
        assert other["data"]["result"] == "DUPLICATE"
        assert len(await entry_logs(c, gate, scan_id, wait=0.5)) == 1


async def test_staff_verify_needs_the_staff_role(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c)
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        payload = await qr(c, buyer["token"], seat_id)
        body = {"qr_payload": payload, "hall_id": "HALL-A"}
        status, answer = await c.call("POST", "/api/verify", token=buyer["token"], json_body=body)
        assert (status, answer["error_code"]) == (403, "FORBIDDEN")
        status, answer = await c.call("POST", "/api/verify", json_body=body)
        assert (status, answer["error_code"]) == (401, "UNAUTHORIZED")
        staff = await c.make_user(role="staff")
        status, answer = await c.call(
            "POST", "/api/verify", token=staff["token"], json_body={"qr_payload": payload}
        )
        assert status == 400 and "hall_id" in answer["message"]
        assert (await seat(c, seat_id)).status == "SOLD"
        status, answer = await c.call("POST", "/api/verify", token=staff["token"], json_body=body)
        assert status == 200 and answer["data"]["result"] == "SUCCESS", answer
        for _ in range(100):  # the entry log is written in the background
            entries = await c.backends.inventory.list_entry_logs(event_id=event["event_id"])
            if entries:
                break
            await asyncio.sleep(0.05)
        assert [(e.result, e.mode, e.staff_user_id) for e in entries] == [
            ("SUCCESS", "staff", staff["user_id"])
        ]
