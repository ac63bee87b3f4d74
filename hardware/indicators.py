"""What the person at the gate sees and hears: green/red lights, a buzzer and the turnstile relay,
or a console line / a recording fake where there is no GPIO."""

from __future__ import annotations

import logging
import queue
import sys
import threading
from typing import Any, Protocol, TextIO

logger = logging.getLogger(__name__)


class IndicatorError(Exception):
    """The indicator cannot be built: bad spec, or no GPIO on this machine."""


class Indicator(Protocol):
    def show(self, result: str, *, admitted: bool) -> None:
        """Announce a verdict. Must return at once: it is called from the decision path."""

    def set_disabled(self, disabled: bool) -> None:
        """The gate was revoked (or restored): a standing signal, distinct from any verdict and
        from "offline", that stays between verdicts until the state changes."""

    def close(self) -> None: ...


_STOP = object()
_STATE = object()  # marks a queued standing-state change, not a verdict


class GpioIndicator:
    """Admitted: green light, one short beep, one relay pulse (the turnstile turns once).
    Rejected: red light, two longer beeps, relay untouched. Lights go off after hold_s.
    Disabled (the gate was revoked): the red light blinks slowly between verdicts, and the
    relay is never pulsed, whatever is shown.

    show() only queues the verdict (microseconds); a worker thread drives the pins, so a slow
    beep pattern never holds up the next scan, and a newer verdict replaces the lit one at once."""

    def __init__(
        self,
        green_pin: int | str = 17,
        red_pin: int | str = 27,
        buzzer_pin: int | str = 22,
        relay_pin: int | str = 23,
        *,
        pulse_s: float = 0.5,
        hold_s: float = 1.5,
        beep_s: float = 0.08,
        reject_beep_s: float = 0.25,
        pin_factory: Any = None,
    ) -> None:
        try:
            from gpiozero import LED, Buzzer, DigitalOutputDevice

            self.green = LED(green_pin, pin_factory=pin_factory)
            self.red = LED(red_pin, pin_factory=pin_factory)
            self.buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory)
            self.relay = DigitalOutputDevice(
                relay_pin, initial_value=False, pin_factory=pin_factory
            )
        except Exception as exc:  # gpiozero raises several types for "no GPIO here"
            self._close_devices()
            raise IndicatorError(f"GPIO indicator unavailable: {exc}") from exc
        self.pulse_s, self.hold_s = pulse_s, hold_s
        self.beep_s, self.reject_beep_s = beep_s, reject_beep_s
        self.disabled_blink_s = 0.5
        self.disabled = False
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gpio-indicator", daemon=True)
        self._thread.start()

    def show(self, result: str, *, admitted: bool) -> None:
        if not self._closed:
            self._queue.put((result, admitted))

    def set_disabled(self, disabled: bool) -> None:
        if not self._closed:
            self._queue.put((_STATE, disabled))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=5)
        self._close_devices()

    def _run(self) -> None:
        pending: Any = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending = None
            if item is _STOP:
                return
            if item[0] is _STATE:
                self.disabled = bool(item[1])
                self._lights_off()  # the standing signal, right away
                continue
            hold = self.hold_s
            try:
                # the light stays at least as long as the beeps, so they are never heard in the dark
                hold = max(hold, self._apply(*item))
            except Exception:  # a pin fault must not silence every later verdict
                logger.exception("indicator pattern failed")
            try:
                pending = self._queue.get(timeout=hold)
            except queue.Empty:
                self._lights_off()

    def _apply(self, result: str, admitted: bool) -> float:
        """Start the pattern; returns how long its beeps and pulse run."""
        if admitted and not self.disabled:
            self.red.off()
            self.green.on()
            self.buzzer.blink(on_time=self.beep_s, off_time=self.beep_s, n=1, background=True)
            self.relay.blink(on_time=self.pulse_s, off_time=self.beep_s, n=1, background=True)
            duration = max(self.beep_s, self.pulse_s)
        else:
            self.green.off()
            self.red.on()
            self.buzzer.blink(
                on_time=self.reject_beep_s, off_time=self.reject_beep_s / 2, n=2, background=True
            )
            duration = 2.5 * self.reject_beep_s
        logger.debug("indicator", extra={"fields": {"result": result, "admitted": admitted}})
        return duration

    def _lights_off(self) -> None:
        """Back to the standing signal: dark, or the disabled gate's slow red blink."""
        try:
            self.green.off()
            if self.disabled:
                self.red.blink(
                    on_time=self.disabled_blink_s, off_time=self.disabled_blink_s, background=True
                )
            else:
                self.red.off()
        except Exception:
            logger.exception("indicator lights-off failed")

    def _close_devices(self) -> None:
        for attr in ("green", "red", "buzzer", "relay"):
            device = getattr(self, attr, None)
            if device is not None:
                device.close()  # gpiozero drives the pin low/off as it releases it


class ConsoleIndicator:
    """For a laptop or a headless test gate: one line per verdict."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def show(self, result: str, *, admitted: bool) -> None:
        line = f"[{'ADMIT' if admitted else 'REJECT'}] {result}"
        logger.info("verdict", extra={"fields": {"result": result, "admitted": admitted}})
        self._write(line)

    def set_disabled(self, disabled: bool) -> None:
        self._write("[DISABLED] gate disabled by the operator" if disabled else "[ENABLED] gate")

    def _write(self, line: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()

    def close(self) -> None:
        pass


class FakeIndicator:
    """Records every verdict, thread-safely, so agent tests can wait for and assert on them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.states: list[bool] = []  # every set_disabled, in order
        self.closed = False
        self._cond = threading.Condition()

    def show(self, result: str, *, admitted: bool) -> None:
        with self._cond:
            self.calls.append((result, admitted))
            self._cond.notify_all()

    def set_disabled(self, disabled: bool) -> None:
        with self._cond:
            self.states.append(disabled)
            self._cond.notify_all()

    @property
    def disabled(self) -> bool:
        with self._cond:
            return bool(self.states and self.states[-1])

    def close(self) -> None:
        self.closed = True

    @property
    def last(self) -> tuple[str, bool] | None:
        with self._cond:
            return self.calls[-1] if self.calls else None

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """True once at least count verdicts were shown, False if timeout passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.calls) >= count, timeout)


_GPIO_KEYS = {
    "green": "green_pin",
    "red": "red_pin",
    "buzzer": "buzzer_pin",
    "relay": "relay_pin",
    "pulse": "pulse_s",
    "hold": "hold_s",
}
SPEC_HELP = "expected console, fake or gpio[:green=17,red=27,buzzer=22,relay=23,pulse=0.5,hold=1.5]"


def _parse_gpio(arg: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in arg.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in _GPIO_KEYS or not value:
            raise IndicatorError(f"bad gpio indicator setting {part!r}; {SPEC_HELP}")
        name = _GPIO_KEYS[key]
        if name.endswith("_s"):
            try:
                seconds = float(value)
            except ValueError:
                raise IndicatorError(f"gpio {key} must be seconds, got {value!r}") from None
            if seconds <= 0:
                raise IndicatorError(f"gpio {key} must be > 0, got {value!r}")
            kwargs[name] = seconds
        else:
            # BCM numbers as ints; names like GPIO17 or BOARD11 pass through to gpiozero
            kwargs[name] = int(value) if value.isdigit() else value
    return kwargs


def make_indicator(spec: str = "console", **opts: Any) -> Indicator:
    kind, _, arg = (spec or "").strip().partition(":")
    if kind == "console" and not arg:
        return ConsoleIndicator(**opts)
    if kind == "fake" and not arg:
        return FakeIndicator()
    if kind == "gpio":
        return GpioIndicator(**{**_parse_gpio(arg), **opts})
    raise IndicatorError(f"unknown indicator spec {spec!r}; {SPEC_HELP}")
