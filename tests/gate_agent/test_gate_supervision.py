"""Issue 15, must-show 2: an exception injected into the capture thread and into the decode
thread (named fault points in the pipeline) kills that thread; the in-process watchdog starts a
new one, scanning resumes within 2 s in the same process, and the restart is counted in
/api/status and /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from central import faults
from central.signing import KeyRing
from gate_agent.agent import GateAgent
from gate_agent.config import load_config
from gate_agent.outbox import ScanRecord
from gate_agent.server import make_dashboard
from hardware.fake_sources import DirSource
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import drop_ticket, free_port, wait_until
from tests.gate_agent.offline_world import HALL

PIN = "4321"
RESUME_S = 2.0


class Verdicts:
    def __init__(self) -> None:
        self.records: list[ScanRecord] = []
        self._cond = threading.Condition()

    def __call__(self, record: ScanRecord) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[ScanRecord]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.records) >= count, timeout)
            return list(self.records)


@pytest.fixture
def ring() -> KeyRing:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return KeyRing({1: Ed25519PrivateKey.generate()})


@pytest.fixture
def agent(tmp_path: Path, ring: KeyRing) -> Iterator[GateAgent]:
    config = load_config(
        {
            "device_token": "tok",
            "pin": PIN,
            "data_dir": str(tmp_path / "gate"),
            "central": f"http://127.0.0.1:{free_port()}",  # nobody there: offline decisions
        },
        environ={},
    )
    camera = tmp_path / "camera"
    camera.mkdir()
    source = DirSource(str(camera), fps=30, hold_frames=3, settle_s=0.05)
    a = GateAgent(config, source=source, indicator=FakeIndicator())
    a.start()
    a.manifest.apply(
        {
            "gate_id": "gate-1",
            "hall_id": HALL,
            "keys": ring.public_keys_json(),
            "events": [{"event_id": "ev-1", "name": "Show"}],
        }
    )
    yield a
    faults.disarm()
    a.stop()


def _sold_seat(agent: GateAgent, n: int) -> str:
    seat_id = f"00000000-0000-4000-8000-{n:012d}"
    agent.manifest.apply(
        {
            "seats": [
                {
                    "seat_id": seat_id,
                    "event_id": "ev-1",
                    "status": "SOLD",
                    "owner_epoch": 0,
                    "hall_id": HALL,
                    "row": "A",
                    "number": n,
                }
            ]
        }
    )
    return seat_id


@pytest.mark.parametrize("thread", ["capture", "decode"])
async def test_a_killed_thread_is_restarted_and_counted(
    agent: GateAgent, ring: KeyRing, thread: str, tmp_path: Path
) -> None:
    verdicts = Verdicts()
    agent.decider.listeners.append(verdicts)
    camera = tmp_path / "camera"
    drop_ticket(camera, ring.sign(_sold_seat(agent, 1), 0, time.time()))
    first = verdicts.wait_for(1, timeout=10)
    assert [r.result for r in first] == ["SUCCESS"]
    worker = agent.supervisor.workers[thread]
    old_thread = worker.thread
    assert old_thread is not None and worker.restarts == 0

    faults.arm(f"gate.{thread}", "error", times=1)
    injected = time.monotonic()
    # the thread dies at its next frame, and a new one takes over
    wait_until(lambda: worker.restarts == 1, timeout=RESUME_S)
    assert not old_thread.is_alive()
    assert worker.thread is not old_thread and worker.thread is not None
    assert worker.thread.is_alive()
    assert "FaultInjected" in (worker.last_error or "")

    # scanning resumed: a new ticket shown now is judged, within 2 s of the injection
    drop_ticket(camera, ring.sign(_sold_seat(agent, 2), 0, time.time()))
    second = verdicts.wait_for(2, timeout=RESUME_S - (time.monotonic() - injected))
    assert [r.result for r in second] == ["SUCCESS", "SUCCESS"], second
    assert time.monotonic() - injected < RESUME_S
    others = {"capture", "decode"} - {thread}
    assert all(agent.supervisor.workers[o].restarts == 0 for o in others)

    # the restart shows on the dashboard and in the metrics
    async with TestClient(TestServer(make_dashboard(agent))) as client:
        assert (await client.post("/api/login", json={"pin": PIN})).status == 200
        status = (await (await client.get("/api/status")).json())["data"]
        assert status["restarts"] == 1
        assert status["workers"][thread]["restarts"] == 1
        assert status["workers"][thread]["alive"] is True
        assert status["pipeline"]["restarts"][thread] == 1
        metrics = await (await client.get("/metrics")).text()
        assert f'gate_worker_restarts_total{{worker="{thread}"}} 1.0' in metrics
        assert f'gate_worker_alive{{worker="{thread}"}} 1.0' in metrics
