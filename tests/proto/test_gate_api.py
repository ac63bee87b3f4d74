"""proto/gate_api.py: every gate<->central message survives its wire form unchanged, the parser
refuses unknown, missing and mistyped fields by name (one spelling per field and value), and the
gate agent and central use the very same classes — no second definition anywhere."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import central.orchestrator.routes.gate as central_gate
import gate_agent.central_client as gate_client
import gate_agent.decider as gate_decider
import gate_agent.sync as gate_sync
from gate_agent.central_client import CentralClient, CentralRejected, CentralUnavailable
from gate_agent.clock import CentralClock
from proto import gate_api
from proto.gate_api import (
    CheckinAnswer,
    CheckinItem,
    CheckinsAnswer,
    CheckinsBody,
    GateMessage,
    GateMessageError,
    GateVerifyBody,
    ManifestAnswer,
    ManifestQuery,
    VerifyAnswer,
)

ROOT = Path(__file__).resolve().parents[2]
SEAT = {"seat_id": "5f0e7b1c-0000-4000-8000-000000000001", "row": "A", "number": 3}
EVENT = {"event_id": "5f0e7b1c-0000-4000-8000-000000000002", "name": "Show", "hall_id": "HALL-A"}
ITEM = {
    "scan_id": "s-1",
    "qr_payload": "TR1:xyz",
    "scanned_at": "2026-11-30T15:00:00.250000Z",
    "decision": "REJECTED",
    "result": "UNPAID",
}

SAMPLES: list[tuple[type[GateMessage], dict[str, Any]]] = [
    (GateVerifyBody, {"qr_payload": "TR1:xyz", "scan_id": "s-1", "scanned_at": 1796050000.5}),
    (GateVerifyBody, {"qr_payload": "ABCD-EFGH", "scan_id": "s-2"}),
    (CheckinsBody, {"items": [ITEM, {**ITEM, "scan_id": "s-2", "decision": "ADMITTED"}]}),
    (
        VerifyAnswer,
        {
            "result": "DUPLICATE",
            "message": "ticket already checked in at 2026-11-30T14:59:00.000Z",
            "seat": SEAT,
            "event": EVENT,
            "checked_in_at": "2026-11-30T14:59:00.000Z",
            "checked_in_gate_id": None,
            "scan_id": "s-1",
            "mode": "online",
            "server_time": "2026-11-30T15:00:00.300Z",
        },
    ),
    (
        VerifyAnswer,
        {
            "result": "INVALID",
            "message": "not a valid ticket",
            "seat": None,
            "event": None,
            "reason": "bad signature",
            "scan_id": "s-3",
            "mode": "online",
        },
    ),
    (
        CheckinsAnswer,
        {
            "items": [
                {"scan_id": "s-1", "outcome": "ALREADY_RECEIVED", "result": "SUCCESS"},
                {
                    "scan_id": "s-2",
                    "outcome": "CONFLICT",
                    "result": "DUPLICATE",
                    "gate_result": "SUCCESS",
                    "message": "ticket already checked in",
                    "seat": {"seat_id": SEAT["seat_id"]},
                    "event": EVENT,
                    "conflict": {
                        "first": {"gate_id": "g-a", "at": "2026-11-30T14:00:00.000Z"},
                        "second": {"gate_id": "g-b", "at": "2026-11-30T14:01:00.000Z"},
                    },
                },
            ],
            "server_time": "2026-11-30T15:00:00.300Z",
        },
    ),
    (
        ManifestAnswer,
        {
            "gate_id": "g-1",
            "gate_name": "North",
            "hall_id": "HALL-A",
            "cursor": 7,
            "more": False,
            "seats": [
                {
                    "seat_id": SEAT["seat_id"],
                    "event_id": EVENT["event_id"],
                    "status": "SOLD",
                    "owner_epoch": 1,
                    "refunded_epoch": 0,
                    "device_serial": 0,
                    "hall_id": "HALL-A",
                    "row": "A",
                    "number": 3,
                    "checked_in_at": None,
                }
            ],
            "events": [
                {
                    **EVENT,
                    "event_date": "2026-11-30T20:00:00+00:00",
                    "doors_open": None,
                    "doors_close": "2026-12-01T02:00:00+00:00",
                    "status": "SCHEDULED",
                }
            ],
            "keys": [{"kid": 1, "public_key": "abc"}],
            "ttl_seconds": 60,
            "skew_seconds": 30,
            "server_time": "2026-11-30T15:00:00.300Z",
        },
    ),
]


@pytest.mark.parametrize(("model", "wire"), SAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_every_message_round_trips_through_its_wire_form(
    model: type[GateMessage], wire: dict[str, Any]
) -> None:
    parsed = model.from_json(wire)
    assert model.from_json(parsed.to_json()) == parsed
    assert model.from_json(json.dumps(parsed.to_json())) == parsed  # as the bytes on the wire
    # what was absent stays absent, what was null stays null: the contract's optional fields
    assert set(parsed.to_json()) == set(wire)


def test_scan_times_keep_their_instant() -> None:
    at = datetime(2026, 11, 30, 15, 0, 0, 250000, tzinfo=UTC)
    body = GateVerifyBody.make(qr_payload="x", scan_id="s", scanned_at=at)
    assert GateVerifyBody.from_json(json.dumps(body.to_json())).scanned_at == at
    assert CheckinItem.from_json(ITEM).scanned_at == at


@pytest.mark.parametrize(
    ("model", "wire", "named"),
    [
        # the other spellings central used to accept, and the gate used to guess
        (CheckinItem, {**ITEM, "decision": "REJECT"}, "decision"),
        (CheckinItem, {**ITEM, "decision": "ADMIT"}, "decision"),
        (CheckinsAnswer, {"results": [], "server_time": None}, "items"),
        (CheckinsAnswer, {"server_time": None}, "items"),
        # unknown, missing, mistyped
        (CheckinItem, {**ITEM, "decided": "REJECTED"}, "decided"),
        (CheckinItem, {k: v for k, v in ITEM.items() if k != "result"}, "result"),
        (GateVerifyBody, {"qr_payload": 5, "scan_id": "s"}, "qr_payload"),
        (GateVerifyBody, {"qr_payload": "x", "scan_id": "bad id!"}, "scan_id"),
        (CheckinsBody, {"items": []}, "items"),
        (VerifyAnswer, {**SAMPLES[3][1], "result": "success"}, "result"),
        (VerifyAnswer, {**SAMPLES[3][1], "seat": {**SEAT, "number": "nine"}}, "seat.number"),
        (VerifyAnswer, {**SAMPLES[3][1], "mode": "maybe"}, "mode"),
        (ManifestAnswer, {**SAMPLES[6][1], "cursor": "7"}, "cursor"),
        (ManifestAnswer, {k: v for k, v in SAMPLES[6][1].items() if k != "keys"}, "keys"),
        (CheckinAnswer, {"scan_id": "s", "outcome": "DONE", "result": "SUCCESS"}, "outcome"),
        (ManifestQuery, {"cursor": "1", "page": "2"}, "page"),
    ],
)
def test_the_parser_refuses_by_name(model: type[GateMessage], wire: Any, named: str) -> None:
    with pytest.raises(GateMessageError) as info:
        model.from_json(wire)
    message = str(info.value)
    assert message.startswith(f"{model.__name__}: "), message
    assert re.search(rf"(: |; ){re.escape(named)}[.:]", message), message
    with pytest.raises(GateMessageError):
        model.from_json(json.dumps(wire))


def test_make_refuses_what_from_json_refuses() -> None:
    at = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    with pytest.raises(GateMessageError, match="^CheckinItem: decision"):
        CheckinItem.make(**{**ITEM, "scanned_at": at, "decision": "ADMIT"})
    with pytest.raises(GateMessageError, match="^VerifyAnswer: mode"):
        VerifyAnswer.make(**{**SAMPLES[3][1], "mode": None})


def test_a_query_string_is_read_as_numbers() -> None:
    assert ManifestQuery.from_json({"cursor": "12", "limit": "5"}) == ManifestQuery(
        cursor=12, limit=5
    )


MESSAGES = [
    getattr(gate_api, name)
    for name in dir(gate_api)
    if isinstance(getattr(gate_api, name), type)
    and issubclass(getattr(gate_api, name), GateMessage)
    and getattr(gate_api, name) is not GateMessage
]


def test_the_gate_and_central_use_the_same_classes() -> None:
    for module, names in (
        (central_gate, ["GateVerifyBody", "CheckinsBody", "CheckinItem", "ManifestQuery"]),
        (central_gate, ["VerifyAnswer", "CheckinsAnswer", "ManifestAnswer"]),
        (gate_client, ["GateVerifyBody", "CheckinsBody", "VerifyAnswer", "CheckinsAnswer"]),
        (gate_client, ["ManifestAnswer", "CheckinAnswer", "CheckinItem"]),
        (gate_sync, ["CheckinItem", "CheckinAnswer"]),
        (gate_decider, ["VerifyAnswer"]),
    ):
        for name in names:
            assert getattr(module, name) is getattr(gate_api, name), (module.__name__, name)
    # and no second definition of any of them anywhere in the code
    for path in [*ROOT.glob("central/**/*.py"), *ROOT.glob("gate_agent/**/*.py")]:
        text = path.read_text()
        for model in MESSAGES:
            assert not re.search(rf"^class {model.__name__}\b", text, re.M), (path, model)
    for path in ("/api/gate/verify", "/api/gate/manifest", "/api/gate/checkins"):
        for module in (central_gate, gate_client):
            assert path not in Path(module.__file__ or "").read_text(), (module.__name__, path)


def answering(data: Any, status: int = 200) -> CentralClient:
    """A gate client whose central answers `data` in the envelope (a central we make misbehave)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"success": True, "data": data})

    return CentralClient(
        "http://central", "t", CentralClock(), transport=httpx.MockTransport(handler)
    )


def test_the_gate_reads_an_answer_it_does_not_know_as_no_answer() -> None:
    good = SAMPLES[3][1]
    assert answering(good).verify("TR1:x", "s-1", 1796050000.0) == VerifyAnswer.from_json(good)
    with pytest.raises(CentralUnavailable, match="result"):
        answering({k: v for k, v in good.items() if k != "result"}).verify(
            "TR1:x", "s-1", 1796050000.0
        )
    with pytest.raises(CentralUnavailable, match="items"):
        answering({"results": []}).checkins([CheckinItem.from_json(ITEM)])
    with pytest.raises(CentralUnavailable, match="not an object"):
        answering([1, 2]).manifest(None)
    # a scan central would refuse is not sent at all
    with pytest.raises(CentralRejected, match="qr_payload"):
        answering(good).verify("x" * 1001, "s-1", 1796050000.0)


def test_a_field_a_newer_central_adds_to_an_answer_is_ignored() -> None:
    """Gates are upgraded one by one: an answer with a field this gate does not know is read, not
    taken for no answer (which would send the gate offline)."""
    good = SAMPLES[3][1]
    newer = {**good, "lane": 3, "seat": {**good["seat"], "colour": "red"}}
    assert answering(newer).verify("TR1:x", "s-1", 1796050000.0) == VerifyAnswer.from_json(good)
    manifest = {**SAMPLES[6][1], "region": "eu"}
    assert ManifestAnswer.from_json(manifest) == ManifestAnswer.from_json(SAMPLES[6][1])
