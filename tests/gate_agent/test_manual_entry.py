"""Issue 7 item 2: a code typed in on the dashboard takes the camera's path — the same verdicts and
the same entry log at central, online and (uploaded later) offline. Real central and gate
processes; bad input is a 400 naming the field and records nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gate_agent.agent import GateAgent
from gate_agent.config import load_config
from gate_agent.server import make_dashboard
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import (
    Venue,
    drop_ticket,
    free_port,
    wait_until,
)
from tests.gate_agent.gate_proc import GateProc

# what must match between a camera scan and a typed one in central's entry log
LOG_FIELDS = ("gate_id", "staff_user_id", "result", "mode", "hall_presented", "hall_expected")


@pytest.fixture
def gate(venue: Venue, tmp_path: Path) -> Iterator[GateProc]:
    g = GateProc(venue.central.url, venue.gate_token, tmp_path)
    g.start("--sync-interval-s", "1")
    yield g
    g.stop()


def camera(gate: GateProc, code: str) -> dict[str, Any]:
    assert gate.camera_dir is not None
    before = {s["scan_id"] for s in gate.scans()}
    drop_ticket(gate.camera_dir, code)
    new = wait_until(lambda: [s for s in gate.scans() if s["scan_id"] not in before], 15)
    assert len(new) == 1, new
    time.sleep(0.6)  # past --dedup-s 0.5, so the next showing of a code is a fresh one
    return dict(new[0])


def manual(gate: GateProc, code: str) -> dict[str, Any]:
    assert gate._http is not None
    answer = gate._http.post("/api/manual", json={"code": code})
    assert answer.status_code == 200, answer.text
    data = dict(answer.json()["data"])
    assert data["source"] == "manual"
    # the gate's own list holds it just like a camera scan
    assert any(s["scan_id"] == data["scan_id"] for s in gate.scans())
    return data


def verdict(scan: dict[str, Any]) -> tuple[Any, ...]:
    return (scan["result"], scan["mode"], scan["seat"]["seat_id"] if scan["seat"] else None)


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def log_entry(venue: Venue, scan: dict[str, Any]) -> dict[str, Any]:
    """Central's entry for a gate scan: central keys it by its own id (derived from the gate's),
    so find it by seat and result (each pair happens once here) and a scan time close to the
    gate's (the gate's clock offset is an estimate)."""
    seat_id = scan["seat"]["seat_id"]

    def find() -> dict[str, Any] | None:
        entries = venue.dashboard()["recent_entries"]
        return next(
            (
                e
                for e in entries
                if e["seat_id"] == seat_id
                and e["result"] == scan["result"]
                and abs(_ms(e["scanned_at"]) - _ms(scan["at"])) <= 2000
            ),
            None,
        )

    return dict(wait_until(find, 15, 0.2))


def test_manual_entry_matches_camera_online_and_offline(venue: Venue, gate: GateProc) -> None:
    a, b, c, d = venue.seat_ids[:4]
    for seat in (a, b, c, d):
        venue.buy(seat)
    wait_until(lambda: gate.status()["online"])

    # online: first showing of each ticket, one by camera, one typed in
    qr_a, qr_b = venue.qr(a), venue.qr(b)  # central issues no code for a used ticket
    cam_ok, man_ok = camera(gate, qr_a), manual(gate, qr_b)
    assert verdict(cam_ok) == ("SUCCESS", "online", a)
    assert verdict(man_ok) == ("SUCCESS", "online", b)
    # second showing, the other way round: both refused alike, naming this gate
    man_dup, cam_dup = manual(gate, qr_a), camera(gate, qr_b)
    assert verdict(man_dup) == ("DUPLICATE", "online", a)
    assert verdict(cam_dup) == ("DUPLICATE", "online", b)
    assert man_dup["message"].endswith("(this gate)") and cam_dup["message"].endswith("(this gate)")
    # junk typed in is judged like junk in front of the camera
    assert manual(gate, "not a ticket")["result"] == camera(gate, "not a ticket")["result"]

    for cam, man in ((cam_ok, man_ok), (cam_dup, man_dup)):
        cam_log, man_log = log_entry(venue, cam), log_entry(venue, man)
        assert [cam_log[f] for f in LOG_FIELDS] == [man_log[f] for f in LOG_FIELDS]
        assert cam_log["gate_id"] == venue.gate_id
    assert venue.seat_status(a) == venue.seat_status(b) == "CHECKED_IN"

    # offline: central down, the gate decides alone either way, and uploads both later
    qr_c, qr_d = venue.qr(c), venue.qr(d)
    venue.central.stop()
    wait_until(lambda: not gate.status()["online"], 15)
    cam_off, man_off = camera(gate, qr_c), manual(gate, qr_d)
    assert verdict(cam_off) == ("SUCCESS", "offline", c)
    assert verdict(man_off) == ("SUCCESS", "offline", d)
    assert gate.status()["backlog"] == 2
    venue.central.start()
    wait_until(lambda: gate.status()["backlog"] == 0, 30, 0.2)
    cam_log, man_log = log_entry(venue, cam_off), log_entry(venue, man_off)
    assert [cam_log[f] for f in LOG_FIELDS] == [man_log[f] for f in LOG_FIELDS]
    assert cam_log["mode"] == "offline" and cam_log["result"] == "SUCCESS"
    assert venue.seat_status(c) == venue.seat_status(d) == "CHECKED_IN"


@pytest.fixture
def offline_agent(tmp_path: Path) -> Iterator[GateAgent]:
    config = load_config(
        {
            "device_token": "tok",
            "pin": "1234",
            "camera": f"dir:{tmp_path / 'cam'}",  # an empty folder: the camera shows nothing
            "data_dir": str(tmp_path / "gate"),
            "central": f"http://127.0.0.1:{free_port()}",
        },
        environ={},
    )
    (tmp_path / "cam").mkdir()
    agent = GateAgent(config, indicator=FakeIndicator())
    agent.start()
    yield agent
    agent.stop()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b"{}", "code"),
        (b'{"code": 42}', "code"),
        (b'{"code": "   "}', "code"),
        (b'{"code": "abc\\u0000def"}', "code"),
        (b'{"code": "' + b"x" * 5000 + b'"}', "code"),
    ],
)
async def test_bad_manual_input_is_a_400_naming_the_field(
    offline_agent: GateAgent, body: bytes, field: str
) -> None:
    async with TestClient(TestServer(make_dashboard(offline_agent))) as client:
        assert (await client.post("/api/login", json={"pin": "1234"})).status == 200
        before = offline_agent.outbox.counts()["scans"]
        answer = await client.post(
            "/api/manual", data=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status == 400
        assert (await answer.json())["message"].startswith(field + ":")
        assert offline_agent.outbox.counts()["scans"] == before
        indicator = offline_agent.indicator
        assert isinstance(indicator, FakeIndicator) and indicator.calls == []
