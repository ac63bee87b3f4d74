"""Issue 5 item 3: a gate whose clock is 5 minutes off admits fresh tickets online and, after
one exchange with central, offline too; EXPIRED and NOT_YET_VALID still hold at their edges."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.signing import KeyRing
from gate_agent.agent import GateAgent
from gate_agent.config import load_config
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import Central, Venue, drop_ticket, make_venue, wait_until


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    c = Central(tmp_path_factory.mktemp("clock") / "central")
    c.start()
    yield c
    c.stop()


@pytest.mark.parametrize("skew", [-300.0, 300.0])
def test_skewed_gate_clock(central: Central, tmp_path: Path, skew: float) -> None:
    if central.proc is None:
        central.start()
    venue: Venue = make_venue(central, hall=f"HALL-{int(skew)}")
    cam = tmp_path / "cam"
    cam.mkdir()
    config = load_config(
        {
            "central": central.url,
            "device_token": venue.gate_token,
            "pin": "1234",
            "camera": f"dir:{cam}",
            "data_dir": str(tmp_path / "gate"),
            "dedup_s": 0.5,
            "sync_interval_s": 1,
        },
        environ={},
    )
    indicator = FakeIndicator()
    agent = GateAgent(config, indicator=indicator, wall=lambda: time.time() + skew)
    agent.start()
    try:
        seats = venue.seat_ids[:2]
        for seat in seats:
            venue.buy(seat)
        wait_until(lambda: agent.connectivity.online and agent.clock.known)
        offset = agent.clock.offset
        assert offset is not None and abs(offset + skew) < 2, offset
        assert agent.status()["clock_offset_s"] == pytest.approx(-skew, abs=2)

        drop_ticket(cam, venue.qr(seats[0]))
        assert indicator.wait_for(1, timeout=10)
        online = agent.outbox.recent(1)[0]
        assert (online.result, online.mode) == ("SUCCESS", "online")
        # central's time, not the gate's, is what the scan list shows
        assert abs(online.at - time.time()) < 5

        wait_until(
            lambda: agent.manifest.seats.get(seats[1], {}).get("status") == "SOLD", timeout=10
        )
        code = venue.qr(seats[1])
        central.stop()
        drop_ticket(cam, code)
        assert indicator.wait_for(2, timeout=10)
        offline = agent.outbox.recent(1)[0]
        assert (offline.result, offline.mode) == ("SUCCESS", "offline")

        # the edges, judged in central's time (the real clock here) by the skewed gate
        ring = KeyRing.load_or_create(central.data_dir)
        seat = venue.seat_ids[2]
        now = time.time()

        def judge(issued_at: float) -> str:
            text = ring.sign(seat, 0, issued_at)
            return agent.decider.handle(text, agent.clock.wall(), time.monotonic()).result

        assert judge(now - 63) == "EXPIRED"
        assert judge(now - 55) != "EXPIRED"
        assert judge(now + 9) == "NOT_YET_VALID"
        assert judge(now + 2) not in ("NOT_YET_VALID", "EXPIRED")
    finally:
        agent.stop()
        central.start()
