"""The gate's timing rules driven by injected clocks instead of sleeps: de-duplication of a code
held in view (Deduper and the pipeline around it), the online/offline hysteresis of Connectivity,
and the sync loop's manifest schedule."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from gate_agent.pipeline import Deduper, Pipeline
from gate_agent.sync import Connectivity, SyncWorker
from gate_agent.verifier import Manifest
from hardware.decode import DecodedCode
from hardware.frames import FrameSource
from tests.gate_agent.central_proc import wait_until


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ----- Deduper -----


def test_deduper_judges_a_held_code_once_and_a_new_showing_afresh() -> None:
    d = Deduper(gap_s=2.0)
    assert d.fresh("A", 0.0)
    # held in view: every sighting within gap_s of the last one extends the same showing
    for t in (0.5, 1.9, 3.8, 5.7):
        assert not d.fresh("A", t)
    assert d.fresh("B", 5.7)  # another code is its own showing
    # gone for longer than gap_s, then shown again: judged afresh
    assert d.fresh("A", 5.7 + 2.01)
    assert not d.fresh("A", 5.7 + 2.5)


def test_deduper_gap_is_exclusive() -> None:
    d = Deduper(gap_s=2.0)
    assert d.fresh("A", 0.0)
    assert not d.fresh("A", 2.0)  # exactly gap_s later: still the same showing
    assert d.fresh("A", 4.5)


def test_deduper_touch_extends_the_showing() -> None:
    d = Deduper(gap_s=2.0)
    assert d.fresh("A", 0.0)
    d.touch("A", 10.0)  # the verdict took until t=10
    assert not d.fresh("A", 11.0)  # a frame that piled up meanwhile is not a fresh showing
    assert d.fresh("A", 13.5)


def test_deduper_pruning_keeps_recent_codes() -> None:
    d = Deduper(gap_s=2.0)
    assert d.fresh("old", 0.0)
    for i in range(70):  # past 64 entries: the table is pruned of codes not seen within gap_s
        assert d.fresh(f"code-{i}", 100.0 + i * 0.01)
    now = 100.0 + 70 * 0.01
    assert "old" not in d._last_seen
    # the codes seen within gap_s survive the pruning: still held in view, not judged again
    for i in range(70):
        assert not d.fresh(f"code-{i}", now)


def test_deduper_pruning_bounds_the_table() -> None:
    d = Deduper(gap_s=1.0)
    for i in range(500):  # every code seen once, 2 s apart: none is still in view
        d.fresh(f"code-{i}", i * 2.0)
    assert len(d._last_seen) <= 65


# ----- the pipeline's de-duplication, on a fake camera, decoder and clock -----


class Scene(FrameSource):
    """A camera the test holds codes in front of, one frame at a time."""

    name = "scene"

    def __init__(self) -> None:
        self.frames: queue.Queue[np.ndarray] = queue.Queue()

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray | None:
        try:
            return self.frames.get(timeout=0.05)
        except queue.Empty:
            return None

    def close(self) -> None:
        pass


class SceneDecoder:
    """Reads a frame's index and answers the codes the test put in that frame."""

    name = "scene"

    def __init__(self) -> None:
        self.scenes: list[list[str]] = []

    def decode(self, frame: np.ndarray) -> list[DecodedCode]:
        corners = ((0, 0), (1, 0), (1, 1), (0, 1))
        return [DecodedCode(text, corners) for text in self.scenes[int(frame[0, 0])]]


class Gate:
    def __init__(self, clock: FakeClock, dedup_s: float) -> None:
        self.clock = clock
        self.scene = Scene()
        self.decoder = SceneDecoder()
        self.judged: list[tuple[str, float]] = []
        self.verdict_s = 0.0  # how long each verdict takes, in fake time
        self.pipeline = Pipeline(
            self.scene,
            self.decoder,
            self.handle,
            dedup_s=dedup_s,
            wall=clock,
            monotonic=clock,
        )

    def handle(self, text: str, wall: float, mono: float) -> None:
        self.judged.append((text, mono))
        self.clock.advance(self.verdict_s)

    def show(self, *codes: str) -> None:
        """One frame holding codes, then an empty one; returns once the pipeline has decoded the
        empty frame, so it has finished with the codes (judged them, or dropped them as held)."""
        self._frame(list(codes))
        self._frame([])

    def _frame(self, codes: list[str]) -> None:
        index = len(self.decoder.scenes)
        self.decoder.scenes.append(codes)
        self.scene.frames.put(np.full((1, 1), index, dtype=np.int32))
        # taken and decoded before the next frame is put: the one-frame slot never drops one
        wait_until(lambda: self.pipeline.decoded_frames > index, timeout=10)

    def texts(self) -> list[str]:
        return [text for text, _ in self.judged]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gate(clock: FakeClock) -> Iterator[Gate]:
    g = Gate(clock, dedup_s=2.0)
    g.pipeline.start()
    yield g
    g.pipeline.stop()


def test_pipeline_judges_a_held_code_once(gate: Gate, clock: FakeClock) -> None:
    for _ in range(5):  # held in view for 4 s, seen every second
        gate.show("A")
        clock.advance(1.0)
    assert gate.texts() == ["A"]
    assert gate.pipeline.stats()["codes_seen"] == 5
    assert gate.pipeline.stats()["verdicts"] == 1


def test_pipeline_judges_a_new_showing_afresh(gate: Gate, clock: FakeClock) -> None:
    gate.show("A", "B")
    clock.advance(1.0)
    gate.show("A")  # B taken away, A still held
    clock.advance(2.5)  # nothing in view for longer than dedup_s
    gate.show("A", "B")
    assert gate.texts() == ["A", "B", "A", "B"]
    # the captured monotonic time handed to the decider comes from the injected clock
    assert [mono for _, mono in gate.judged] == [1000.0, 1000.0, 1003.5, 1003.5]


def test_pipeline_slow_verdict_does_not_make_piled_up_frames_fresh(
    gate: Gate, clock: FakeClock
) -> None:
    gate.verdict_s = 5.0  # central is slow: the verdict takes longer than dedup_s
    gate.show("A")
    assert clock() == 1005.0
    clock.advance(0.5)
    gate.show("A")  # a frame that piled up while A was judged: the same showing
    assert gate.texts() == ["A"]
    clock.advance(2.5)
    gate.show("A")
    assert gate.texts() == ["A", "A"]


def test_pipeline_health_follows_its_clock(gate: Gate, clock: FakeClock) -> None:
    wait_until(lambda: gate.pipeline.healthy(stall_s=1.0))
    beats = (gate.pipeline.capture_beat, gate.pipeline.decode_beat)
    assert beats == (clock(), clock())
    gate.pipeline.stop()  # the threads stop beating
    clock.advance(1.5)
    assert not gate.pipeline.healthy(stall_s=1.0)


# ----- Connectivity -----


def test_connectivity_first_answer_is_online_at_once() -> None:
    clock = FakeClock(50.0)
    changes: list[bool] = []
    c = Connectivity(clock=clock)
    c.on_change = changes.append
    assert not c.online and c.changed_at == 50.0
    clock.advance(3.0)
    c.record(True)
    assert c.online and c.changed_at == 53.0 and changes == [True]
    clock.advance(1.0)
    c.record(True)
    assert c.changed_at == 53.0 and changes == [True]  # no change, no new time


def test_connectivity_goes_offline_after_fail_threshold_failures() -> None:
    clock = FakeClock(0.0)
    changes: list[bool] = []
    c = Connectivity(fail_threshold=3, ok_threshold=2, clock=clock)
    c.on_change = changes.append
    c.record(True)
    for _ in range(2):
        clock.advance(1.0)
        c.record(False)
        assert c.online and c.changed_at == 0.0
    clock.advance(1.0)
    c.record(True)  # a success in between starts the count again
    for _ in range(2):
        clock.advance(1.0)
        c.record(False)
    assert c.online and c.changed_at == 0.0
    clock.advance(1.0)
    c.record(False)
    assert not c.online and c.changed_at == 6.0
    clock.advance(1.0)
    c.record(False)
    assert changes == [True, False] and c.changed_at == 6.0


def test_connectivity_comes_back_after_ok_threshold_oks() -> None:
    clock = FakeClock(0.0)
    changes: list[bool] = []
    c = Connectivity(fail_threshold=2, ok_threshold=3, clock=clock)
    c.on_change = changes.append
    c.record(True)
    c.record(False)
    clock.advance(1.0)
    c.record(False)
    assert not c.online and c.changed_at == 1.0
    for _ in range(2):
        clock.advance(1.0)
        c.record(True)
        assert not c.online and c.changed_at == 1.0
    clock.advance(1.0)
    c.record(False)  # a failure in between starts the count again
    for _ in range(2):
        clock.advance(1.0)
        c.record(True)
    assert not c.online
    clock.advance(1.0)
    c.record(True)
    assert c.online and c.changed_at == 7.0
    assert changes == [True, False, True]


def test_connectivity_failures_before_any_answer_change_nothing() -> None:
    clock = FakeClock(0.0)
    changes: list[bool] = []
    c = Connectivity(clock=clock)
    c.on_change = changes.append
    for _ in range(5):
        clock.advance(1.0)
        c.record(False)
    assert not c.online and c.changed_at == 0.0 and changes == []


# ----- the sync loop's manifest schedule -----


class _Answer:
    more = False

    def to_json(self) -> dict[str, Any]:
        return {"seats": [], "events": [], "keys": [], "cursor": None}


class _Client:
    def __init__(self) -> None:
        self.manifests = 0

    def manifest(self, cursor: str | None) -> _Answer:
        self.manifests += 1
        return _Answer()


class _Outbox:
    def set_meta(self, key: str, value: Any) -> None:
        pass

    def pending(self, limit: int = 100) -> list[Any]:
        return []


def test_sync_pulls_the_manifest_every_sync_interval_on_its_clock() -> None:
    clock = FakeClock(0.0)
    client = _Client()
    connectivity = Connectivity(clock=clock)
    worker = SyncWorker(
        client,  # type: ignore[arg-type]
        _Outbox(),  # type: ignore[arg-type]
        Manifest(),
        connectivity,
        sync_interval_s=5.0,
        monotonic=clock,
    )
    worker.run_once()
    assert client.manifests == 1 and connectivity.online
    clock.advance(4.9)
    worker.run_once()  # online and within the interval: uploads only
    assert client.manifests == 1
    clock.advance(0.2)
    worker.run_once()
    assert client.manifests == 2
    connectivity.online = False  # offline: every round asks for the manifest
    worker.run_once()
    assert client.manifests == 3
