"""Scanner inputs below the gate: lines from a pty (the serial scanner), key events to text (the
keyboard-wedge scanner, decoded without python-evdev) and the spec strings."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.signing import KeyRing
from gate_agent.config import ConfigError, load_config
from hardware.scanners import (
    HidScanner,
    KeyboardWedge,
    LineSplitter,
    ScannerError,
    StdinScanner,
    TtyScanner,
    keystrokes,
    open_scanner,
)


def _token() -> str:
    ring = KeyRing({1: Ed25519PrivateKey.generate()})
    return ring.sign("00000000-0000-4000-8000-000000000001", 3, time.time())


def test_lines_split_on_cr_lf_and_junk_is_dropped() -> None:
    lines = LineSplitter()
    lines.feed(b"AB")
    assert lines.pop() is None  # no end of line yet
    lines.feed(b"C\r\n\r\nDEF\nbad\x07bell\n" + b"x" * 5000 + b"\nok\r")
    assert [lines.pop() for _ in range(4)] == ["ABC", "DEF", "ok", None]


def test_tty_scanner_reads_codes_from_a_pty_in_raw_mode() -> None:
    master, slave = os.openpty()
    reader = TtyScanner(os.ttyname(slave))
    try:
        reader.open()
        code = _token()
        os.write(master, code[:50].encode())
        assert reader.read_code(0.05) is None  # half a code is not a code
        os.write(master, code[50:].encode() + b"\r" + b"SECOND\n")
        assert reader.read_code(2) == code
        assert reader.read_code(2) == "SECOND"
        os.close(master)
        master = -1
        with pytest.raises(ScannerError):  # the scanner went away: reopen, never a crash
            for _ in range(10):
                reader.read_code(0.2)
    finally:
        reader.close()
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)


def test_keyboard_wedge_types_a_real_ticket_code() -> None:
    code = _token()
    keys = KeyboardWedge()
    for key, value in keystrokes(code) + keystrokes("second"):
        keys.feed(key, value)
    assert keys.pop() == code
    assert keys.pop() == "second"
    assert keys.pop() is None


def test_keyboard_wedge_caps_lock_and_repeats() -> None:
    keys = KeyboardWedge()
    keys.feed(58, 1)  # caps lock on: letters upper, digits unchanged
    for key, value in [(30, 1), (30, 2), (30, 0), (2, 1), (2, 0), (28, 1)]:
        keys.feed(key, value)
    assert keys.pop() == "A1"  # the auto-repeat (value 2) typed nothing


def test_scanner_specs() -> None:
    assert isinstance(open_scanner("tty:/dev/ttyACM0"), TtyScanner)
    assert open_scanner("tty:/dev/ttyUSB0@9600").name == "tty:/dev/ttyUSB0@9600"
    assert isinstance(open_scanner("hid:/dev/input/event3"), HidScanner)
    assert open_scanner("stdin").name == "stdin"
    for bad in ("tty:", "tty:/dev/x@123", "hid:", "stdin:x", "usb:1"):
        with pytest.raises(ScannerError):
            open_scanner(bad)
    with pytest.raises(ConfigError, match="scanner .*baud"):
        load_config({"device_token": "t", "pin": "1234", "scanner": "tty:/dev/x@7"}, environ={})


def test_hid_scanner_without_its_device_is_a_clear_retryable_error(tmp_path: Path) -> None:
    reader = HidScanner(str(tmp_path / "event99"))
    with pytest.raises(ScannerError, match="hid:"):
        reader.open()


def test_run_help_documents_camera_and_scanner_specs() -> None:
    from gate_agent.__main__ import _run_parser

    text = _run_parser().format_help()
    for spec in ("v4l2:0", "picamera2", "dir:PATH", "none", "tty:/dev/ttyACM0", "hid:", "stdin"):
        assert spec in text, spec
    assert "--scanner" in text and "--second-pass-ms" in text


def test_stdin_scanner_reads_lines_until_end_of_file(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()

    class Stdin:
        def fileno(self) -> int:
            return read_end

    monkeypatch.setattr("sys.stdin", Stdin())
    reader = StdinScanner()
    reader.open()
    os.write(write_end, b"FIRST\nSECOND\n")
    os.close(write_end)
    assert reader.read_code(2) == "FIRST"
    assert reader.read_code(2) == "SECOND"
    assert reader.read_code(2) is None and reader.finished  # end of input: no error, no spin
    reader.close()
    os.close(read_end)


class FakeEvdev:
    """python-evdev's surface the HID reader uses (InputDevice: fd, grab, read, ungrab, close),
    faked at the library boundary: key events queued by the test, a pipe to wake select()."""

    class InputDevice:
        instances: list[FakeEvdev.InputDevice] = []

        def __init__(self, path: str) -> None:
            if not path.endswith("event7"):
                raise FileNotFoundError(2, "No such file or directory")
            self.name = "Fake Barcode Scanner"
            self.fd, self._wake = os.pipe()
            self.grabbed = False
            self.queued: list[Any] = []
            FakeEvdev.InputDevice.instances.append(self)

        def type(self, text: str) -> None:
            for code, value in keystrokes(text):
                self.queued.append(SimpleNamespace(type=1, code=code, value=value))
                self.queued.append(SimpleNamespace(type=0, code=0, value=0))  # EV_SYN
            os.write(self._wake, b"x")

        def read(self) -> list[Any]:
            os.read(self.fd, 4096)
            events, self.queued = self.queued, []
            return events

        def grab(self) -> None:
            self.grabbed = True

        def ungrab(self) -> None:
            self.grabbed = False

        def close(self) -> None:
            os.close(self.fd)
            os.close(self._wake)


def test_hid_scanner_reads_and_grabs_a_keyboard_wedge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "evdev", FakeEvdev)
    FakeEvdev.InputDevice.instances.clear()
    reader = open_scanner("hid:/dev/input/event7")
    reader.open()
    (device,) = FakeEvdev.InputDevice.instances
    assert device.grabbed  # its keystrokes go to the gate only
    assert reader.read_code(0.05) is None
    code = _token()
    device.type(code)
    device.type("again")
    assert reader.read_code(2) == code
    assert reader.read_code(2) == "again"
    reader.close()
    assert not device.grabbed
    with pytest.raises(ScannerError, match="event8"):
        open_scanner("hid:/dev/input/event8").open()
