"""Offline decisions follow central's rules and order; the admission is on disk before the
indicator (and so the relay) hears of it; gpiozero mock pins show the patterns (issue 5 item 8)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from hardware.indicators import FakeIndicator, GpioIndicator
from tests.gate_agent.offline_world import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path, FakeIndicator())
    yield w
    w.outbox.close()


def test_offline_verdicts_in_centrals_order(world: World) -> None:
    sold = world.seat()
    assert world.scan(world.code(sold)).result == "SUCCESS"
    assert world.scan(world.code(sold)).result == "DUPLICATE"  # this gate's own admission
    assert world.scan(world.code(world.seat("CHECKED_IN"))).result == "DUPLICATE"
    assert world.scan(world.code(world.seat("HELD"))).result == "UNPAID"
    assert world.scan(world.code(world.seat("AVAILABLE"))).result == "UNPAID"
    moved = world.seat(owner_epoch=2)
    assert world.scan(world.code(moved, epoch=1)).result == "TRANSFERRED"
    # transferred outranks unpaid and duplicate, as at central
    assert (
        world.scan(world.code(world.seat("CHECKED_IN", owner_epoch=3), epoch=1)).result
        == "TRANSFERRED"
    )
    assert world.scan(world.code(world.seat(hall_id="HALL-B"))).result == "WRONG_HALL"
    assert world.scan(world.ring.sign(str(uuid.uuid4()), 0, time.time())).result == "NOT_FOUND"
    assert world.scan(world.code(world.seat(), age=90)).result == "EXPIRED"
    assert world.scan(world.code(world.seat(), age=-30)).result == "NOT_YET_VALID"
    assert world.scan("TR1:not a ticket").result == "INVALID"
    assert world.scan("https://example.com/").result == "INVALID"
    scans = world.outbox.recent(50)
    assert all(s.mode == "offline" for s in scans)
    assert {s.result for s in scans if s.local} == {"EXPIRED", "NOT_YET_VALID", "INVALID"}
    assert len(world.outbox.pending(100)) == len(scans)  # all of it goes to central later


def test_doors_window_gives_wrong_date(tmp_path: Path) -> None:
    w = make_world(tmp_path, FakeIndicator(), doors=(time.time() + 3600, time.time() + 7200))
    try:
        assert w.scan(w.code(w.seat())).result == "WRONG_DATE"
    finally:
        w.outbox.close()


def test_admission_is_on_disk_before_the_indicator_hears_of_it(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    class DiskCheckingIndicator(FakeIndicator):
        def show(self, result: str, *, admitted: bool) -> None:
            # a separate connection sees only committed rows
            conn = sqlite3.connect(tmp_path / "gate.sqlite3")
            (rows,) = conn.execute("SELECT count(*) FROM admissions").fetchone()
            conn.close()
            seen.append((result, rows))
            super().show(result, admitted=admitted)

    w = make_world(tmp_path, DiskCheckingIndicator())
    try:
        w.scan(w.code(w.seat()))
        w.scan(w.code(w.seat()))
    finally:
        w.outbox.close()
    assert seen == [("SUCCESS", 1), ("SUCCESS", 2)]
    conn = sqlite3.connect(tmp_path / "gate.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


GREEN, RED, BUZZER, RELAY = 5, 6, 13, 19


def _history(factory: MockFactory, pin: int) -> list[bool]:
    return [s.state for s in factory.pin(pin).states]


def _settle(factory: MockFactory, pins: tuple[int, ...], lengths: tuple[int, ...]) -> None:
    deadline = time.monotonic() + 5
    while any(len(_history(factory, p)) < n for p, n in zip(pins, lengths, strict=True)) or any(
        factory.pin(p).state for p in (GREEN, RED, BUZZER, RELAY)
    ):
        assert time.monotonic() < deadline, [_history(factory, p) for p in pins]
        time.sleep(0.01)


@pytest.mark.parametrize("admit", [True, False])
def test_gpio_pattern_for_success_and_rejection(tmp_path: Path, admit: bool) -> None:
    factory = MockFactory()
    indicator = GpioIndicator(
        GREEN,
        RED,
        BUZZER,
        RELAY,
        pulse_s=0.1,
        hold_s=0.2,
        beep_s=0.03,
        reject_beep_s=0.05,
        pin_factory=factory,
    )
    w = make_world(tmp_path, indicator)
    try:
        seat = w.seat()
        record = w.scan(w.code(seat) if admit else w.code(seat, age=120))
        assert record.result == ("SUCCESS" if admit else "EXPIRED")
        if admit:
            _settle(factory, (GREEN, BUZZER, RELAY), (3, 3, 3))
            assert _history(factory, GREEN) == [False, True, False]
            assert _history(factory, BUZZER) == [False, True, False]  # one short beep
            assert _history(factory, RELAY) == [False, True, False]  # one turnstile pulse
            assert _history(factory, RED) == [False]
        else:
            _settle(factory, (RED, BUZZER), (3, 5))
            assert _history(factory, RED) == [False, True, False]
            assert _history(factory, BUZZER) == [False, True, False, True, False]  # two beeps
            assert _history(factory, RELAY) == [False]  # the turnstile stays locked
            assert _history(factory, GREEN) == [False]
    finally:
        w.outbox.close()
        indicator.close()
        factory.reset()
