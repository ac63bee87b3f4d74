"""TR2 codes bound to the attendee's phone, end to end through the real services: binding a key,
admission online, a replaced device refused (online, in the offline upload, and by a gate's own
offline decision from its manifest), and a transfer ending the certificate."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster, running_cluster
from conftest import drop_prefix_databases, fresh_postgres_prefix, needs_postgres
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from verify_support import add_gate, buy, gate_verify, make_event, seat

from gate_agent.verifier import Manifest, decide_offline, local_check
from proto.ticket_token import sign_device_code

SERVICES = ("inventory", "users", "orders", "events", "orchestrator")


class Phone:
    """What the attendee page does in WebCrypto: a P-256 key that never leaves the device."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = b""

    @property
    def public_key(self) -> str:
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
        return base64.urlsafe_b64encode(point).rstrip(b"=").decode()

    def code(self, at: float | None = None) -> str:
        return sign_device_code(self.cert, int(at if at is not None else time.time()), self.key)


async def bind(c: Cluster, token: str, seat_id: str, phone: Phone) -> dict[str, Any]:
    status, body = await c.call(
        "POST",
        f"/api/tickets/{seat_id}/device",
        token=token,
        json_body={"public_key": phone.public_key},
    )
    assert status == 200, body
    phone.cert = base64.urlsafe_b64decode(body["data"]["cert"] + "==")
    return body["data"]


async def manifest_of(c: Cluster, gate: dict[str, Any]) -> Manifest:
    status, body = await c.call("GET", "/api/gate/manifest", token=gate["device_token"])
    assert status == 200, body
    manifest = Manifest()
    manifest.apply(body["data"])
    return manifest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
async def database(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None: the embedded SQLite default; else a fresh PostgreSQL prefix, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    prefix = fresh_postgres_prefix()
    try:
        yield prefix
    finally:
        await drop_prefix_databases(prefix, SERVICES)


async def test_a_bound_phone_is_admitted_once_and_a_replaced_one_is_refused(
    tmp_path: Path, database: str | None
) -> None:
    async with running_cluster(tmp_path, database_url=database) as c:
        event = await make_event(c, seats=3)
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        gate = await add_gate(c, event["admin"]["token"])
        first, second = Phone(), Phone()

        bound = await bind(c, buyer["token"], seat_id, first)
        assert bound["device_serial"] == 1
        assert bound["not_after"] > time.time()
        assert (await seat(c, seat_id)).device_serial == 1

        # the manifest carries the serial; a gate's offline decision uses it
        manifest = await manifest_of(c, gate)
        assert manifest.seats[seat_id]["device_serial"] == 1
        verdict = local_check(first.code(), manifest.keys, time.time(), clock_known=True)
        assert verdict.ok and verdict.claims is not None
        assert decide_offline(verdict.claims, manifest, set(), time.time()).result == "SUCCESS"

        # binding again from another phone: the first phone's fresh codes are refused
        assert (await bind(c, buyer["token"], seat_id, second))["device_serial"] == 2
        status, body = await gate_verify(c, gate, first.code())
        assert status == 200, body
        assert (body["data"]["result"], body["data"]["reason"]) == ("INVALID", "device_replaced")
        manifest = await manifest_of(c, gate)
        verdict = local_check(first.code(), manifest.keys, time.time(), clock_known=True)
        assert verdict.claims is not None
        offline = decide_offline(verdict.claims, manifest, set(), time.time())
        assert offline.result == "INVALID" and "device_replaced" in offline.message

        # the current phone is admitted once, then DUPLICATE with a fresh code
        status, body = await gate_verify(c, gate, second.code())
        assert body["data"]["result"] == "SUCCESS", body
        status, body = await gate_verify(c, gate, second.code())
        assert body["data"]["result"] == "DUPLICATE", body


async def test_offline_upload_of_a_replaced_device_is_rejected(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        gate = await add_gate(c, event["admin"]["token"])
        old, new = Phone(), Phone()
        await bind(c, buyer["token"], seat_id, old)
        stale_code = old.code()
        await bind(c, buyer["token"], seat_id, new)
        now = datetime.now(UTC).isoformat()
        items = [
            {
                "scan_id": str(uuid.uuid4()),
                "qr_payload": code,
                "scanned_at": now,
                "decision": "ADMITTED",
                "result": "SUCCESS",
            }
            for code in (stale_code, new.code())
        ]
        status, body = await c.call(
            "POST", "/api/gate/checkins", token=gate["device_token"], json_body={"items": items}
        )
        assert status == 200, body
        answers = body["data"]["items"]
        assert [a["result"] for a in answers] == ["INVALID", "SUCCESS"], answers
        assert (await seat(c, seat_id)).status == "CHECKED_IN"


async def test_a_transfer_ends_the_certificate(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        gate = await add_gate(c, event["admin"]["token"])
        phone = Phone()
        await bind(c, buyer["token"], seat_id, phone)
        other = await c.make_user()
        await c.backends.inventory.update_owner(seat_id, buyer["user_id"], other["user_id"])
        status, body = await gate_verify(c, gate, phone.code())
        assert body["data"]["result"] == "TRANSFERRED", body
        # the old owner cannot certify a phone any more; the new one can, at the new epoch
        status, body = await c.call(
            "POST",
            f"/api/tickets/{seat_id}/device",
            token=buyer["token"],
            json_body={"public_key": Phone().public_key},
        )
        assert (status, body["error_code"]) == (403, "NOT_SEAT_OWNER")
        fresh = Phone()
        await bind(c, other["token"], seat_id, fresh)
        status, body = await gate_verify(c, gate, fresh.code())
        assert body["data"]["result"] == "SUCCESS", body


async def test_binding_refuses_bad_input_and_changes_nothing(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        off_curve = base64.urlsafe_b64encode(b"\x02" + b"\xff" * 32).rstrip(b"=").decode()
        for key in (off_curve, "A" * 44, "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!", 42):
            status, body = await c.call(
                "POST",
                f"/api/tickets/{seat_id}/device",
                token=buyer["token"],
                json_body={"public_key": key},
            )
            assert (status, body["error_code"]) == (400, "VALIDATION_ERROR"), (key, body)
            assert "public_key" in body["message"]
        assert (await seat(c, seat_id)).device_serial == 0
        status, body = await c.call(
            "POST", f"/api/tickets/{seat_id}/device", json_body={"public_key": Phone().public_key}
        )
        assert (status, body["error_code"]) == (401, "UNAUTHORIZED")
        status, body = await c.call(
            "POST",
            f"/api/tickets/{event['seat_ids'][1]}/device",
            token=buyer["token"],
            json_body={"public_key": Phone().public_key},
        )
        assert (status, body["error_code"]) == (403, "NOT_SEAT_OWNER")
