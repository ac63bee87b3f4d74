"""Issue 5, items 1, 2, 4 and 5 with real processes: central serving, the gate agent running
with a dir: camera, tickets bought through the public API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gate_agent.central_proc import Venue, drop_ticket, wait_until
from tests.gate_agent.gate_proc import GateProc


@pytest.fixture
def gate(venue: Venue, tmp_path: Path) -> Iterator[GateProc]:
    g = GateProc(venue.central.url, venue.gate_token, tmp_path)
    g.start()
    yield g
    g.stop()


def test_online_success_then_duplicate(venue: Venue, gate: GateProc) -> None:
    seat = venue.seat_ids[0]
    venue.buy(seat)
    wait_until(lambda: gate.status()["online"])
    assert gate.camera_dir is not None
    code = venue.qr(seat)
    drop_ticket(gate.camera_dir, code)
    (first,) = gate.wait_scans(1)
    assert first["result"] == "SUCCESS" and first["mode"] == "online", first
    assert first["seat"]["seat_id"] == seat
    assert venue.seat_status(seat) == "CHECKED_IN"
    # the same code shown again a moment later (central issues no new code for a used ticket)
    time.sleep(1.0)  # longer than the gate's --dedup-s 0.5: a fresh showing, not one held in view
    drop_ticket(gate.camera_dir, code)
    second = gate.wait_scans(2)[0]
    assert second["result"] == "DUPLICATE" and second["mode"] == "online", second
    status = gate.status()
    assert status["gate_id"] == venue.gate_id and status["hall_id"] == venue.hall
    assert status["counts"]["admitted"] == 1 and status["backlog"] == 0
