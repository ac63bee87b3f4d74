"""Issue 15, must-show 3: a fake serial barcode scanner on a pseudo terminal (the gate opens the
pty's device as `--scanner tty:/dev/pts/N`; the test types codes + newline on the other side).
Real gate agent process, real central: codes are admitted and duplicates refused, online and
with central stopped."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gate_agent.central_proc import Venue, wait_until
from tests.gate_agent.gate_proc import GateProc
from tests.gate_agent.test_gate_offline import FAST, synced_after


class FakeScanner:
    """The scanner's side of the serial line: a code, then CR LF, as most scanners send it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)

    def scan(self, code: str) -> None:
        os.write(self.master, code.encode() + b"\r\n")

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def scanner() -> Iterator[FakeScanner]:
    s = FakeScanner()
    yield s
    s.close()


def scanned(gate: GateProc, scanner: FakeScanner, code: str) -> dict[str, Any]:
    before = len(gate.scans())
    scanner.scan(code)
    return gate.wait_scans(before + 1)[0]


def test_scanner_codes_admitted_and_duplicates_refused_online_and_offline(
    venue: Venue, scanner: FakeScanner, tmp_path: Path
) -> None:
    central = venue.central
    online_seat, offline_seat = venue.seat_ids[:2]
    venue.buy(online_seat)
    venue.buy(offline_seat)
    gate = GateProc(central.url, venue.gate_token, tmp_path)
    gate.start(*FAST, "--scanner", f"tty:{scanner.path}")
    try:
        synced_after(gate, time.time())
        wait_until(lambda: gate.status()["scanners"][0]["ok"], timeout=10)

        code = venue.qr(online_seat)
        first = scanned(gate, scanner, code)
        assert (first["result"], first["mode"]) == ("SUCCESS", "online"), first
        again = scanned(gate, scanner, code)
        assert (again["result"], again["mode"]) == ("DUPLICATE", "online"), again
        assert venue.seat_status(online_seat) == "CHECKED_IN"

        offline_code = venue.qr(offline_seat)
        central.stop()
        # garbage on the line (a misread) is judged as what it is, and does not jam the reader
        junk = scanned(gate, scanner, "NOT-A-TICKET")
        assert junk["result"] == "INVALID", junk
        admitted = scanned(gate, scanner, offline_code)
        assert (admitted["result"], admitted["mode"]) == ("SUCCESS", "offline"), admitted
        refused = scanned(gate, scanner, offline_code)
        assert (refused["result"], refused["mode"]) == ("DUPLICATE", "offline"), refused
        also_refused = scanned(gate, scanner, code)  # admitted online before central went away
        assert also_refused["result"] == "DUPLICATE", also_refused
        status = gate.status()
        assert status["online"] is False
        assert status["scanners"][0]["codes"] == 6

        central.start()
        wait_until(lambda: gate.status()["backlog"] == 0, timeout=15)
        assert venue.seat_status(offline_seat) == "CHECKED_IN"
    finally:
        gate.stop()
