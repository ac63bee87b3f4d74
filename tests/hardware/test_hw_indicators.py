"""Indicator patterns on gpiozero's mock pins, plus the console and fake indicators."""

from __future__ import annotations

import io
import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from hardware.indicators import (
    ConsoleIndicator,
    FakeIndicator,
    GpioIndicator,
    IndicatorError,
    make_indicator,
)

GREEN, RED, BUZZER, RELAY = 5, 6, 13, 19


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def gate(factory):
    ind = GpioIndicator(
        GREEN, RED, BUZZER, RELAY, pulse_s=0.15, hold_s=0.3, beep_s=0.03, pin_factory=factory
    )
    yield ind
    ind.close()


def history(factory, pin: int) -> list[bool]:
    return [s.state for s in factory.pin(pin).states]


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "indicator pattern did not finish"
        time.sleep(0.01)


def settled(factory) -> bool:
    """Pattern over: both lights went on and back off, nothing left on."""
    return all(not factory.pin(p).state for p in (GREEN, RED, BUZZER, RELAY)) and any(
        len(history(factory, p)) > 1 for p in (GREEN, RED)
    )


def test_success_shows_green_one_beep_and_one_relay_pulse(gate, factory):
    gate.show("SUCCESS", admitted=True)
    wait_until(lambda: settled(factory) and len(history(factory, RELAY)) >= 3)
    assert history(factory, GREEN) == [False, True, False]
    assert history(factory, RED) == [False]
    assert history(factory, BUZZER) == [False, True, False]
    assert history(factory, RELAY) == [False, True, False]
    # the relay was held for the configured pulse (a lower bound only: never assert speed)
    relay = factory.pin(RELAY).states
    assert relay[2].timestamp >= 0.1


def test_rejection_shows_red_two_beeps_and_leaves_the_relay_alone(gate, factory):
    gate.show("DUPLICATE", admitted=False)
    wait_until(lambda: settled(factory) and len(history(factory, BUZZER)) >= 5)
    assert history(factory, RED) == [False, True, False]
    assert history(factory, GREEN) == [False]
    assert history(factory, BUZZER) == [False, True, False, True, False]
    assert history(factory, RELAY) == [False]


def test_a_newer_verdict_replaces_the_lit_one(gate, factory):
    gate.show("SUCCESS", admitted=True)
    gate.show("WRONG_HALL", admitted=False)
    wait_until(
        lambda: (
            settled(factory)
            and len(history(factory, RED)) == 3
            and len(history(factory, RELAY)) >= 3
        )
    )
    assert history(factory, GREEN) == [False, True, False]
    assert history(factory, RED) == [False, True, False]
    assert history(factory, RELAY) == [False, True, False]  # the admitted pulse still happened


def test_green_stays_lit_through_the_hold_then_goes_off(factory):
    ind = GpioIndicator(GREEN, RED, BUZZER, RELAY, pulse_s=0.05, hold_s=1.0, pin_factory=factory)
    try:
        ind.show("SUCCESS", admitted=True)
        wait_until(lambda: factory.pin(GREEN).state)
        time.sleep(0.1)  # well inside the 1 s hold
        assert factory.pin(GREEN).state
        wait_until(lambda: not factory.pin(GREEN).state)
        assert history(factory, GREEN) == [False, True, False]
    finally:
        ind.close()


def test_close_turns_everything_off_and_ignores_later_verdicts(factory):
    ind = GpioIndicator(GREEN, RED, BUZZER, RELAY, hold_s=10, pin_factory=factory)
    ind.show("SUCCESS", admitted=True)
    wait_until(lambda: factory.pin(GREEN).state)
    ind.close()
    ind.close()
    ind.show("SUCCESS", admitted=True)
    assert not ind._thread.is_alive()


def test_make_indicator_gpio_spec(factory):
    ind = make_indicator(
        "gpio:green=5,red=6,buzzer=13,relay=19,pulse=0.1,hold=0.2", pin_factory=factory
    )
    try:
        assert isinstance(ind, GpioIndicator)
        assert (ind.pulse_s, ind.hold_s) == (0.1, 0.2)
        ind.show("SUCCESS", admitted=True)
        wait_until(lambda: settled(factory))
        assert history(factory, RELAY) == [False, True, False]
    finally:
        ind.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("leds", "unknown indicator spec 'leds'"),
        ("gpio:green", "bad gpio indicator setting 'green'"),
        ("gpio:blue=4", "bad gpio indicator setting 'blue=4'"),
        ("gpio:pulse=fast", "gpio pulse must be seconds"),
        ("gpio:hold=0", "gpio hold must be > 0"),
        ("console:loud", "unknown indicator spec"),
    ],
)
def test_bad_indicator_specs(spec, message):
    with pytest.raises(IndicatorError, match=message):
        make_indicator(spec)


def test_same_pin_twice_is_an_indicator_error(factory):
    with pytest.raises(IndicatorError, match="GPIO indicator unavailable"):
        GpioIndicator(5, 5, 13, 19, pin_factory=factory)


def test_console_indicator_writes_one_line_per_verdict():
    out = io.StringIO()
    ind = make_indicator("console", stream=out)
    ind.show("SUCCESS", admitted=True)
    ind.show("EXPIRED", admitted=False)
    ind.close()
    assert out.getvalue() == "[ADMIT] SUCCESS\n[REJECT] EXPIRED\n"
    assert isinstance(ind, ConsoleIndicator)


def test_fake_indicator_records_and_can_be_waited_on():
    ind = make_indicator("fake")
    assert isinstance(ind, FakeIndicator)
    assert ind.wait_for(1, timeout=0.01) is False
    threading.Timer(0.05, lambda: ind.show("SUCCESS", admitted=True)).start()
    assert ind.wait_for(1, timeout=5)
    ind.show("DUPLICATE", admitted=False)
    assert ind.calls == [("SUCCESS", True), ("DUPLICATE", False)]
    assert ind.last == ("DUPLICATE", False)
    ind.close()
    assert ind.closed
