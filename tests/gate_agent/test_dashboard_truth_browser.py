"""Issue 15, must-show 4, in headless Chromium against a real gate and a real central: the gate's
name in the header; a rejection the gate decided itself while online is labelled online (and,
once uploaded, counted on the event's dashboard at central); counters change in the same paint
as the scan list; the verdict clears after a few seconds (Playwright's fake clock); at 800x480
the manual-entry box is on screen without scrolling (screenshot in test-artifacts/) and takes
the short code shown under the QR."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_chromium

from central.signing import KeyRing
from tests.gate_agent.central_proc import Venue, drop_ticket, wait_until
from tests.gate_agent.gate_proc import GateProc
from tests.gate_agent.test_dashboard_browser import (
    ARTIFACTS,
    GATE_SCREEN,
    SYNC_INTERVAL_S,
    _login,
)

pytestmark = needs_chromium


@pytest.fixture
def gate(venue: Venue, tmp_path: Path) -> Iterator[GateProc]:
    g = GateProc(venue.central.url, venue.gate_token, tmp_path)
    g.start("--sync-interval-s", str(SYNC_INTERVAL_S))
    yield g
    g.stop()


# For every row the moment it is inserted: the counters on screen in that same paint.
RECORD_COUNTERS = """() => { window.__countersAt = {};
  new MutationObserver(() => {
    for (const tr of document.querySelectorAll('#scan-rows tr'))
      if (!(tr.dataset.scanId in window.__countersAt))
        window.__countersAt[tr.dataset.scanId] = {
          admitted: document.getElementById('count-admitted').textContent,
          rejected: document.getElementById('count-rejected').textContent };
  }).observe(document.getElementById('scan-rows'), {childList: true}); }"""


async def test_dashboard_tells_staff_the_truth(
    browser: Any,  # noqa: F811
    venue: Venue,
    gate: GateProc,
) -> None:
    url = f"http://127.0.0.1:{gate.port}/"
    seat = venue.seat_ids[0]
    venue.buy(seat)
    wait_until(lambda: gate.status()["online"] and gate.status()["gate_name"] == "North")
    context = await browser.new_context(viewport=GATE_SCREEN)
    await context.clock.install()  # time flows as usual until the test jumps it
    page = await context.new_page()
    await _login(page, url)
    await page.wait_for_selector('#banner[data-online="online"]', timeout=10_000)

    # the header names the gate as the operator registered it, not by its id
    header = await page.text_content("#banner-gate") or ""
    assert header.startswith("North"), header
    assert venue.gate_id[:8] not in header

    # at 800x480 the manual-entry box is on screen with the page scrolled to the top
    assert await page.evaluate("window.scrollY") == 0
    for selector in ("#manual-code", "#manual-submit"):
        box = await page.locator(selector).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 480, box
        assert box["x"] >= 0 and box["x"] + box["width"] <= 800, box
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "gate-dashboard-800x480-manual-entry.png"))
    await page.evaluate(RECORD_COUNTERS)

    # a camera scan: its row and the Admitted counter arrive in one paint
    assert gate.camera_dir is not None
    drop_ticket(gate.camera_dir, venue.qr(seat))
    admitted = page.locator('#scan-rows tr[data-result="SUCCESS"]')
    await admitted.wait_for(timeout=15_000)
    admitted_id = await admitted.get_attribute("data-scan-id")
    counters = await page.evaluate(f"window.__countersAt[{admitted_id!r}]")
    assert counters == {"admitted": "1", "rejected": "0"}, counters

    # the verdict is for the person at the gate now: it stays a few seconds, then clears
    assert await page.get_attribute("#verdict", "data-kind") == "ok"
    await context.clock.fast_forward(4000)
    assert await page.get_attribute("#verdict", "data-kind") == "ok"
    await context.clock.fast_forward(3000)
    await page.wait_for_selector('#verdict[data-kind="idle"]', timeout=2_000)
    assert await page.text_content("#verdict-word") == "Waiting for a scan"

    # what a person can read out: the short code under the QR, typed in the box
    venue.buy(venue.seat_ids[2])
    ticket = venue.central.call("GET", f"/api/tickets/{venue.seat_ids[2]}/qr", venue.buyer_token)
    await page.fill("#manual-code", ticket["short_code"].lower())
    await page.click("#manual-submit")
    await page.wait_for_function(
        "() => document.querySelectorAll('#scan-rows tr[data-result=\"SUCCESS\"]').length === 2",
        timeout=5_000,
    )
    assert await page.text_content("#verdict-word") == "ADMIT"
    assert await page.text_content("#count-admitted") == "2"

    # an expired code typed in while central answers: the gate rejects it itself, but online
    ring = KeyRing.load_or_create(venue.central.data_dir)
    expired = ring.sign(venue.seat_ids[1], 0, time.time() - 600)
    await page.fill("#manual-code", expired)
    await page.click("#manual-submit")
    rejected = page.locator('#scan-rows tr[data-result="EXPIRED"]')
    await rejected.wait_for(timeout=5_000)
    row_text = await rejected.text_content() or ""
    assert "online" in row_text and "offline" not in row_text, row_text
    meta = await page.text_content("#verdict-meta") or ""
    assert "online" in meta and "offline" not in meta, meta
    assert "OFFLINE" not in (await page.text_content("#banner-state") or "")
    rejected_id = await rejected.get_attribute("data-scan-id")
    counters = await page.evaluate(f"window.__countersAt[{rejected_id!r}]")
    assert counters == {"admitted": "2", "rejected": "1"}, counters
    await context.close()

    # uploaded, the rejection lands at central with its event: the event's dashboard counts it
    wait_until(lambda: gate.status()["backlog"] == 0, timeout=15)
    board = venue.dashboard()
    assert board["scans"]["by_result"].get("EXPIRED") == 1, board["scans"]
    (entry,) = [e for e in board["recent_entries"] if e["result"] == "EXPIRED"]
    assert entry["seat_id"] == venue.seat_ids[1] and entry["gate_id"] == venue.gate_id
