"""Issue 10, must show 1: a new attendee registers in the attendee app (the code from the file OTP
backend), buys a seat from the seat map and opens the ticket; a screenshot of the page, held up to
a real gate agent's camera (its dir: camera folder), decodes (zxing-cpp) to a token the gate admits
(SUCCESS); the page then shows the ticket as checked in, with the gate's name, without a reload."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from conftest import needs_chromium

from proto.ticket_token import parse_token
from tests.gate_agent.central_proc import Central
from tests.gate_agent.gate_proc import GateProc
from tests.web.support import (
    Guard,
    buy_from_map,
    decode_qr,
    make_event,
    new_email,
    new_page,
    register_in_page,
    screenshot,
)

pytestmark = needs_chromium


async def test_register_buy_show_qr_admitted_then_checked_in(
    central: Central, browser: Any, tmp_path: Path
) -> None:
    event = make_event(central, hall="HALL-W1", name="Opening Night")
    gate_info = central.admin("add-gate", "--hall", "HALL-W1", "--name", "North Door")
    gate = GateProc(central.url, gate_info["device_token"], tmp_path)
    gate.start()
    try:
        # the ticket may be checked in while its QR renews: that 409 is expected, nothing else
        guard = Guard(central.url, allow_client_errors=True)
        page = await new_page(browser, guard)
        user_id = await register_in_page(page, central, new_email("attendee"))
        central.admin("grant-credits", "--user-id", user_id, "--amount", "100")

        seat_id = await buy_from_map(page, event["event_id"], "B", 3)
        await page.click("#open-ticket")
        await page.wait_for_selector("#qr svg.qr")
        assert await page.locator("#ticket .seat-line").inner_text() == "Row B, seat 3"
        shot = await screenshot(page, "must1-ticket-phone")
        codes = decode_qr(shot)
        assert len(codes) == 1, codes
        # on a secure origin the page shows the phone-made TR2 code; either kind names the seat
        claims = parse_token(codes[0])
        assert claims is not None and claims.seat_id == seat_id, codes

        assert gate.camera_dir is not None
        part = gate.camera_dir / "ticket.png.part"
        shutil.copyfile(shot, part)
        os.replace(part, gate.camera_dir / "ticket.png")
        scan = gate.wait_scans(1)[0]
        assert (scan["result"], scan["mode"]) == ("SUCCESS", "online"), scan
        assert scan["seat"]["seat_id"] == seat_id

        # no reload: the open ticket screen notices the admission by itself
        checked = page.locator("#checked-in")
        await checked.wait_for(timeout=10_000)
        text = await checked.inner_text()
        assert text.startswith("Checked in at ") and text.endswith(", North Door"), text
        assert await page.locator("#qr svg").count() == 0
        await screenshot(page, "must1-ticket-checked-in-phone")
        guard.check()
    finally:
        gate.stop()
