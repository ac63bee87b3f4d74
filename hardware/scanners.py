"""Barcode scanners that hand over finished codes instead of frames: serial scanners on a tty
(`tty:/dev/ttyACM0`, optionally `tty:/dev/ttyUSB0@9600`), keyboard-wedge scanners read straight
from their input device (`hid:/dev/input/event3`, needs python-evdev) and `stdin`. Each one yields
one code per line (a scanner ends every code with Enter / CR / LF)."""

from __future__ import annotations

import logging
import os
import select
import sys
import termios
import tty
from abc import ABC, abstractmethod
from typing import Any

logger = logging.getLogger(__name__)

SPEC_HELP = "expected tty:DEVICE[@BAUD], hid:/dev/input/eventN or stdin"
# a ticket code is 139 characters; anything this long without an end of line is line noise
MAX_LINE = 4096
BAUDS = {
    1200: termios.B1200,
    2400: termios.B2400,
    4800: termios.B4800,
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}


class ScannerError(Exception):
    """The spec is malformed, or the device is missing / went away (retried like a camera)."""


class CodeReader(ABC):
    name: str = "scanner"
    # true once a source that cannot produce more codes (stdin at end of file) has ended
    finished: bool = False

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read_code(self, timeout: float) -> str | None:
        """The next complete code, or None when none arrived within timeout."""

    @abstractmethod
    def close(self) -> None: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class LineSplitter:
    """Bytes in, codes out: a code ends at CR or LF (scanners send either or both); empty lines,
    lines with control characters and over-long runs are dropped, never judged."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._ready: list[str] = []
        self._overflow = False

    def feed(self, data: bytes) -> None:
        for byte in data:
            if byte in (10, 13):
                self._finish()
            elif len(self._buf) >= MAX_LINE:
                self._overflow = True
            else:
                self._buf.append(byte)

    def _finish(self) -> None:
        raw, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        text = raw.decode("utf-8", errors="replace").strip()
        if overflow:
            logger.warning("scanner line too long; dropped")
            return
        if not text:
            return
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            logger.warning("scanner sent control characters; line dropped")
            return
        self._ready.append(text)

    def pop(self) -> str | None:
        return self._ready.pop(0) if self._ready else None


class _FdLines(CodeReader):
    """A file descriptor read with select(), cut into lines."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._lines = LineSplitter()

    def read_code(self, timeout: float) -> str | None:
        code = self._lines.pop()
        if code is not None:
            return code
        if self._fd is None:
            raise ScannerError(f"{self.name} is not open")
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return None
        except OSError as exc:  # EIO: the USB scanner was unplugged (or the pty closed)
            raise ScannerError(f"{self.name}: {exc.strerror or exc}") from exc
        if not data:
            self._end_of_file()
            return None
        self._lines.feed(data)
        return self._lines.pop()

    def _end_of_file(self) -> None:
        raise ScannerError(f"{self.name}: device closed")


class TtyScanner(_FdLines):
    """A serial scanner (USB CDC-ACM shows up as /dev/ttyACM*, USB-serial as /dev/ttyUSB*)."""

    def __init__(self, path: str, baud: int | None = None) -> None:
        super().__init__()
        self.path, self.baud = path, baud
        self.name = f"tty:{path}" + (f"@{baud}" if baud else "")

    def open(self) -> None:
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise ScannerError(f"{self.name}: {exc.strerror}") from exc
        try:
            # raw: no echo, no line editing, CR not turned into anything; we split lines ourselves
            tty.setraw(fd)
            if self.baud:
                attrs = termios.tcgetattr(fd)
                attrs[4] = attrs[5] = BAUDS[self.baud]
                termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except termios.error as exc:
            os.close(fd)
            raise ScannerError(f"{self.name}: not a terminal device ({exc})") from exc
        self._fd = fd
        self._lines = LineSplitter()
        logger.info("scanner open", extra={"fields": {"scanner": self.name}})

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


class StdinScanner(_FdLines):
    """Codes typed or piped into the agent's standard input (a scanner on the console, a script)."""

    name = "stdin"

    def open(self) -> None:
        try:
            self._fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError) as exc:
            raise ScannerError(f"stdin: not readable ({exc})") from exc
        self.finished = False

    def close(self) -> None:
        self._fd = None  # never close the process's stdin

    def _end_of_file(self) -> None:
        self.finished = True


# Linux input key codes (linux/input-event-codes.h) to the characters a US-layout keyboard-wedge
# scanner types with them: (plain, with shift). Stable kernel ABI, so no evdev needed to decode.
_LETTERS = dict(
    zip(
        (16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 30, 31, 32, 33, 34, 35, 36, 37, 38, 44, 45, 46)
        + (47, 48, 49, 50),
        "qwertyuiopasdfghjklzxcvbnm",
        strict=True,
    )
)
KEYMAP: dict[int, tuple[str, str]] = {
    **{code: (ch, ch.upper()) for code, ch in _LETTERS.items()},
    2: ("1", "!"),
    3: ("2", "@"),
    4: ("3", "#"),
    5: ("4", "$"),
    6: ("5", "%"),
    7: ("6", "^"),
    8: ("7", "&"),
    9: ("8", "*"),
    10: ("9", "("),
    11: ("0", ")"),
    12: ("-", "_"),
    13: ("=", "+"),
    26: ("[", "{"),
    27: ("]", "}"),
    39: (";", ":"),
    40: ("'", '"'),
    41: ("`", "~"),
    43: ("\\", "|"),
    51: (",", "<"),
    52: (".", ">"),
    53: ("/", "?"),
    57: (" ", " "),
    # keypad keys, which some scanners use for digits
    55: ("*", "*"),
    71: ("7", "7"),
    72: ("8", "8"),
    73: ("9", "9"),
    74: ("-", "-"),
    75: ("4", "4"),
    76: ("5", "5"),
    77: ("6", "6"),
    78: ("+", "+"),
    79: ("1", "1"),
    80: ("2", "2"),
    81: ("3", "3"),
    82: ("0", "0"),
    83: (".", "."),
    98: ("/", "/"),
}
KEY_ENTER, KEY_KPENTER, KEY_TAB = 28, 96, 15
SHIFTS = frozenset({42, 54})  # left, right shift
CAPSLOCK = 58
EV_KEY = 1
KEY_DOWN, KEY_REPEAT = 1, 2


class KeyboardWedge:
    """Key events in, codes out: what a keyboard-wedge scanner types, decoded without a keyboard
    layout service. Only key-down events type; Enter (or Tab) ends the code."""

    def __init__(self) -> None:
        self._shift: set[int] = set()
        self._caps = False
        self._chars: list[str] = []
        self._ready: list[str] = []

    def feed(self, code: int, value: int) -> None:
        if code in SHIFTS:
            if value == 0:
                self._shift.discard(code)
            else:
                self._shift.add(code)
            return
        if value != KEY_DOWN:
            return  # releases and auto-repeat type nothing
        if code == CAPSLOCK:
            self._caps = not self._caps
        elif code in (KEY_ENTER, KEY_KPENTER, KEY_TAB):
            text = "".join(self._chars).strip()
            self._chars.clear()
            if text:
                self._ready.append(text)
        elif code in KEYMAP:
            plain, shifted = KEYMAP[code]
            upper = bool(self._shift) != (self._caps and plain.isalpha())
            if len(self._chars) < MAX_LINE:
                self._chars.append(shifted if upper else plain)

    def pop(self) -> str | None:
        return self._ready.pop(0) if self._ready else None


def keystrokes(text: str) -> list[tuple[int, int]]:
    """The (key code, value) events a wedge scanner sends to type text and Enter — the inverse of
    KeyboardWedge, for tests and for replaying a recorded scan."""
    reverse: dict[str, tuple[int, bool]] = {}
    for code, (plain, shifted) in sorted(KEYMAP.items()):  # main keys before keypad
        reverse.setdefault(plain, (code, False))
        if shifted != plain:
            reverse.setdefault(shifted, (code, True))
    events: list[tuple[int, int]] = []
    for ch in text:
        if ch not in reverse:
            raise ValueError(f"a US keyboard cannot type {ch!r}")
        code, shift = reverse[ch]
        if shift:
            events.append((42, 1))
        events += [(code, 1), (code, 0)]
        if shift:
            events.append((42, 0))
    return events + [(KEY_ENTER, 1), (KEY_ENTER, 0)]


class HidScanner(CodeReader):
    """A keyboard-wedge scanner read from its evdev node and grabbed, so its keystrokes go to the
    gate only (not into whatever has the console's focus)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = f"hid:{path}"
        self._dev: Any = None
        self._keys = KeyboardWedge()

    def open(self) -> None:
        self.close()
        try:
            import evdev  # optional: pip install 'ticketremaster[hid]'
        except ImportError as exc:
            raise ScannerError(
                f"{self.name}: python-evdev is not installed (pip install evdev)"
            ) from exc
        try:
            dev = evdev.InputDevice(self.path)
        except OSError as exc:
            raise ScannerError(f"{self.name}: {exc.strerror or exc}") from exc
        try:
            dev.grab()
        except OSError as exc:
            dev.close()
            raise ScannerError(f"{self.name}: cannot grab the device ({exc})") from exc
        self._dev = dev
        self._keys = KeyboardWedge()
        logger.info("scanner open", extra={"fields": {"scanner": self.name, "device": dev.name}})

    def read_code(self, timeout: float) -> str | None:
        code = self._keys.pop()
        if code is not None:
            return code
        if self._dev is None:
            raise ScannerError(f"{self.name} is not open")
        ready, _, _ = select.select([self._dev.fd], [], [], timeout)
        if not ready:
            return None
        try:
            events = list(self._dev.read())
        except BlockingIOError:
            return None
        except OSError as exc:  # ENODEV: unplugged
            raise ScannerError(f"{self.name}: {exc.strerror or exc}") from exc
        for event in events:
            if event.type == EV_KEY:
                self._keys.feed(event.code, event.value)
        return self._keys.pop()

    def close(self) -> None:
        if self._dev is not None:
            try:
                self._dev.ungrab()
            except OSError:
                pass
            self._dev.close()
            self._dev = None


def open_scanner(spec: str) -> CodeReader:
    """Build (not open) the scanner a spec names; ScannerError for a spec that can never work."""
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "stdin":
        if arg:
            raise ScannerError(f"scanner spec 'stdin' takes no argument, got {spec!r}")
        return StdinScanner()
    if kind == "tty":
        path, _, baud_text = arg.partition("@")
        if not path:
            raise ScannerError("scanner spec 'tty:' needs a device, e.g. tty:/dev/ttyACM0")
        baud: int | None = None
        if baud_text:
            if not baud_text.isdigit() or int(baud_text) not in BAUDS:
                raise ScannerError(
                    f"scanner spec {spec!r}: baud must be one of {', '.join(map(str, BAUDS))}"
                )
            baud = int(baud_text)
        return TtyScanner(path, baud)
    if kind == "hid":
        if not arg:
            raise ScannerError("scanner spec 'hid:' needs a device, e.g. hid:/dev/input/event3")
        return HidScanner(arg)
    raise ScannerError(f"unknown scanner {kind!r} in spec {spec!r}; {SPEC_HELP}")
