"""Issue 7 item 1 in headless Chromium (Debian's chromium driven by Playwright): PIN login, a scan
through the gate's camera appearing live, the offline banner when central stops, manual entry from
the page, the PIN lockout, and screenshots at 800x480 and phone size under test-artifacts/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import needs_chromium

from tests.gate_agent.central_proc import (
    REPO,
    Venue,
    drop_ticket,
    free_port,
    wait_until,
)
from tests.gate_agent.gate_proc import PIN, GateProc

pytestmark = needs_chromium

ARTIFACTS = REPO / "test-artifacts"
GATE_SCREEN = {"width": 800, "height": 480}
PHONE = {"width": 390, "height": 844}
# the gate's own settings in these tests (GateProc passes --backoff-max-s 1)
SYNC_INTERVAL_S = 1.0
VERIFY_TIMEOUT_S = 0.8
BACKOFF_MAX_S = 1.0
# Connectivity goes offline after two failed rounds: the next manifest pull, then one retry after
# a backoff; the dashboard pushes the change at once. Plus a second for the browser to paint.
OFFLINE_DETECTION_S = SYNC_INTERVAL_S + 2 * (VERIFY_TIMEOUT_S + BACKOFF_MAX_S) + 1.0


@pytest.fixture
def gate(venue: Venue, tmp_path: Path) -> Iterator[GateProc]:
    g = GateProc(venue.central.url, venue.gate_token, tmp_path)
    g.start("--sync-interval-s", str(SYNC_INTERVAL_S))
    yield g
    g.stop()


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


async def _login(page: Any, url: str, pin: str = PIN) -> None:
    await page.goto(url)
    await page.fill("#pin", pin)
    await page.click("#login-button")
    await page.wait_for_selector("#verdict", timeout=10_000)


async def _no_horizontal_scroll(page: Any) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"page is {overflow}px wider than the screen"


async def _verdict_on_screen(page: Any, height: int) -> None:
    box = await page.locator("#verdict").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, box


async def test_live_scans_offline_banner_and_screenshots(
    browser: Any, venue: Venue, gate: GateProc
) -> None:
    url = f"http://127.0.0.1:{gate.port}/"
    for seat in venue.seat_ids[:2]:
        venue.buy(seat)
    assert gate.camera_dir is not None
    wait_until(lambda: gate.status()["online"])

    context = await browser.new_context(viewport=GATE_SCREEN)
    page = await context.new_page()
    await page.goto(url)
    assert await page.locator("#pin").is_visible()  # no session yet: the PIN form
    await _login(page, url)
    await page.wait_for_selector('#banner[data-online="online"]', timeout=10_000)
    # remember when each row appears, and prove later that the page never reloaded
    await page.evaluate(
        """() => { window.__noReload = true; window.__seenAt = {};
        new MutationObserver(() => { for (const tr of document.querySelectorAll('#scan-rows tr'))
          if (!(tr.dataset.scanId in window.__seenAt)) window.__seenAt[tr.dataset.scanId] = Date.now();
        }).observe(document.getElementById('scan-rows'), {childList: true}); }"""
    )

    # a real ticket, bought through the public API, shown to the gate's camera
    code = venue.qr(venue.seat_ids[0])
    drop_ticket(gate.camera_dir, code)
    row = page.locator('#scan-rows tr[data-result="SUCCESS"]')
    await row.wait_for(timeout=15_000)
    scan_id = await row.get_attribute("data-scan-id")
    (scan,) = [s for s in gate.scans() if s["scan_id"] == scan_id]
    seen_at = await page.evaluate(f"window.__seenAt[{scan_id!r}]")
    # captured at the gate -> on the page, without a reload (same host clock)
    assert seen_at - _ms(scan["at"]) <= 1000, (seen_at, scan["at"])
    assert await page.evaluate("window.__noReload === true")
    assert scan["mode"] == "online"
    assert await page.text_content("#verdict-word") == "ADMIT"
    assert await page.text_content("#verdict-icon") == "✓"
    assert await page.get_attribute("#verdict", "data-kind") == "ok"
    assert (await page.text_content("#verdict-reason") or "").startswith("Welcome — Row ")

    # the same code again: refused, and the page says where and when it was used
    await asyncio.sleep(1.0)  # past the gate's --dedup-s 0.5: a fresh showing
    drop_ticket(gate.camera_dir, code)
    await page.locator('#scan-rows tr[data-result="DUPLICATE"]').wait_for(timeout=15_000)
    assert await page.text_content("#verdict-word") == "ALREADY USED"
    assert await page.get_attribute("#verdict", "data-kind") == "warn"
    reason = await page.text_content("#verdict-reason") or ""
    assert reason.startswith("Already checked in at this gate, "), reason
    await page.wait_for_function(
        "() => document.getElementById('count-admitted').textContent === '1'"
        " && document.getElementById('rejected-by-reason').textContent.includes('Already used: 1')",
        timeout=5_000,
    )
    assert await page.evaluate("window.__noReload === true")
    # the preview <img> shows MJPEG frames from the gate's camera
    await page.wait_for_function(
        "() => document.getElementById('preview').naturalWidth > 0", timeout=10_000
    )

    ARTIFACTS.mkdir(exist_ok=True)
    await _no_horizontal_scroll(page)
    await _verdict_on_screen(page, GATE_SCREEN["height"])
    await page.screenshot(path=str(ARTIFACTS / "gate-dashboard-800x480.png"))
    phone_ctx = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    await phone_ctx.add_cookies(await context.cookies())
    phone = await phone_ctx.new_page()
    await phone.goto(url)
    await phone.locator('#scan-rows tr[data-result="DUPLICATE"]').wait_for(timeout=10_000)
    await _no_horizontal_scroll(phone)
    await _verdict_on_screen(phone, PHONE["height"])
    assert await phone.locator("#manual-code").is_visible()
    await phone.screenshot(path=str(ARTIFACTS / "gate-dashboard-phone-390x844.png"))
    assert (ARTIFACTS / "gate-dashboard-800x480.png").stat().st_size > 0
    await phone_ctx.close()

    # central goes away: the banner turns offline within the gate's detection time
    second = venue.qr(venue.seat_ids[1])
    venue.central.stop()
    stopped = time.monotonic()
    await page.wait_for_selector(
        '#banner[data-online="offline"]', timeout=OFFLINE_DETECTION_S * 1000
    )
    assert time.monotonic() - stopped <= OFFLINE_DETECTION_S
    assert "OFFLINE" in (await page.text_content("#banner-state") or "")
    assert "Last sync" in (await page.text_content("#banner-sync") or "")

    # a code typed in from the page is judged offline like a camera scan, and waits for upload
    await page.fill("#manual-code", second)
    await page.click("#manual-submit")
    await page.wait_for_function(
        "() => document.querySelectorAll('#scan-rows tr[data-result=\"SUCCESS\"]').length === 2",
        timeout=5_000,
    )
    first_row = page.locator("#scan-rows tr").first
    assert await first_row.get_attribute("data-result") == "SUCCESS"
    assert "offline" in (await first_row.text_content() or "")
    assert "decided offline" in (await page.text_content("#verdict-meta") or "")
    await page.wait_for_function(
        "() => document.getElementById('banner-backlog').textContent === 'Upload backlog: 1'",
        timeout=5_000,
    )
    assert await page.evaluate("window.__noReload === true")
    await page.screenshot(path=str(ARTIFACTS / "gate-dashboard-800x480-offline.png"))
    await context.close()


async def test_five_wrong_pins_lock_login(browser: Any, tmp_path: Path) -> None:
    # no central needed: a gate that never reached it still serves its dashboard
    gate = GateProc(f"http://127.0.0.1:{free_port()}", "tok", tmp_path)
    gate.start()
    try:
        page = await (await browser.new_context(viewport=PHONE)).new_page()
        await page.goto(f"http://127.0.0.1:{gate.port}/")
        for left in (4, 3, 2, 1):
            await page.fill("#pin", "0000")
            await page.click("#login-button")
            await page.wait_for_function(
                f"() => document.getElementById('login-error').textContent"
                f" === 'Wrong PIN. {left} tries left.'",
                timeout=5_000,
            )
        await page.fill("#pin", "0000")
        await page.click("#login-button")
        await page.wait_for_selector('#login-error[data-state="locked"]', timeout=5_000)
        assert await page.locator("#login-button").is_disabled()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "gate-login-locked-390x844.png"))
        # locked means locked: even the right PIN is refused until the lock ends
        answer = await asyncio.to_thread(
            httpx.post, f"http://127.0.0.1:{gate.port}/api/login", json={"pin": PIN}
        )
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    finally:
        gate.stop()


async def test_page_reconnects_after_the_gate_restarts(
    browser: Any, venue: Venue, gate: GateProc
) -> None:
    url = f"http://127.0.0.1:{gate.port}/"
    venue.buy(venue.seat_ids[0])
    code = venue.qr(venue.seat_ids[0])
    page = await (await browser.new_context(viewport=GATE_SCREEN)).new_page()
    await _login(page, url)
    await page.wait_for_selector('body[data-ws="open"]', timeout=10_000)
    await page.evaluate("() => { window.__noReload = true; }")
    await asyncio.to_thread(gate.stop)
    await page.wait_for_selector('body[data-ws="closed"]', timeout=10_000)
    assert await page.locator("#ws-state").is_visible()  # staff see the screen is stale
    # same port and data dir: the session survives the restart (stored in the outbox)
    await asyncio.to_thread(gate.start, "--sync-interval-s", str(SYNC_INTERVAL_S))
    await page.wait_for_selector('body[data-ws="open"]', timeout=15_000)
    assert not await page.locator("#ws-state").is_visible()
    assert gate.camera_dir is not None
    drop_ticket(gate.camera_dir, code)
    await page.locator('#scan-rows tr[data-result="SUCCESS"]').wait_for(timeout=15_000)
    assert await page.evaluate("() => window.__noReload === true")
