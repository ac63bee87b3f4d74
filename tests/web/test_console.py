"""Issue 10, must show 4: in the organiser console an organiser creates an event, adds a gate (its
device token shown once in a ready-to-paste command line, which a real gate agent process then
runs with), sees an admission on the event's live view within 2 s, revokes the gate; the gate's
next scan is refused and the gate agent says it is disabled, not offline."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
from conftest import needs_chromium

from tests.gate_agent.central_proc import Central, drop_ticket
from tests.gate_agent.gate_proc import PIN, GateProc
from tests.web.support import (
    DESKTOP,
    PASSWORD,
    Guard,
    login_token,
    make_event,
    make_user,
    new_page,
    screenshot,
)

pytestmark = needs_chromium

LIVE_WITHIN_MS = 2_000


def buy(central: Central, token: str, seat_id: str) -> str:
    order = central.call("POST", "/api/reserve", token, json={"seat_id": seat_id})
    central.call("POST", "/api/pay", token, json={"order_id": order["order_id"]})
    return str(central.call("GET", f"/api/tickets/{seat_id}/qr", token)["qr_payload"])


async def test_console_event_gate_live_admission_and_revoke(
    central: Central, browser: Any, tmp_path: Path
) -> None:
    admin_email = make_user(central, role="admin")
    buyer = login_token(central, make_user(central, credits=500))

    guard = Guard(central.url)
    page = await new_page(browser, guard, DESKTOP)
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto("/admin/#/login")
    await page.fill("#login-form [name=email]", admin_email)
    await page.fill("#login-form [name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#logout")

    # create the event in the console
    await page.click("#new-event")
    form = page.locator("#create-event-form")
    await form.locator("[name=name]").fill("Console Concert")
    await form.locator("[name=venue]").fill("Riverside Hall")
    await form.locator("[name=hall_id]").fill("HALL-W4")
    await form.locator("[name=rows]").fill("2")
    await form.locator("[name=seats_per_row]").fill("5")
    await screenshot(page, "must4-create-event-desktop")
    # while the seats are being made the console says so (the answer is held back until seen)
    seen = asyncio.Event()

    async def hold(route: Any) -> None:
        if route.request.method == "POST":
            await seen.wait()
        await route.continue_()

    await page.route("**/api/admin/events", hold)
    await page.click("#create-event")
    await page.wait_for_selector(
        "#create-status .msg-info:text('Creating the event and its 10 seats…')"
    )
    assert await page.locator("#create-event").is_disabled()
    seen.set()
    await page.wait_for_url(re.compile(r".*#/events/[0-9a-f-]{36}$"))
    event_id = page.url.rsplit("/", 1)[1]
    await page.wait_for_selector("#gates")
    event = central.call("GET", f"/api/events/{event_id}")
    assert (event["name"], event["hall_id"], event["total_seats"]) == (
        "Console Concert",
        "HALL-W4",
        10,
    )
    prices = {(s["row"], s["price"]) for s in event["seats"]}
    assert prices == {("A", 80), ("B", 50)}  # Premium on row A, Standard elsewhere

    # add a gate: the token is shown once, inside the command to paste on the gate
    await page.fill("#add-gate-form [name=name]", "West Door")
    await page.click("#add-gate")
    command = await page.locator("#gate-command").inner_text()
    match = re.fullmatch(
        rf"python -m gate_agent run --central {re.escape(central.url)} "
        r"--device-token (\S+) --camera v4l2:0",
        command,
    )
    assert match, command
    await screenshot(page, "must4-gate-added-desktop")
    gate = GateProc(central.url, match.group(1), tmp_path)
    gate.start()
    try:
        assert gate.camera_dir is not None
        seats = [s["seat_id"] for s in event["seats"]]
        drop_ticket(gate.camera_dir, buy(central, buyer, seats[0]))
        assert gate.wait_scans(1)[0]["result"] == "SUCCESS"
        admitted_at = time.monotonic()
        cell = page.locator(
            "#by-gate tr:has-text('West Door') td.admitted", has_text=re.compile(r"^1$")
        )
        await cell.wait_for(timeout=LIVE_WITHIN_MS)
        assert (time.monotonic() - admitted_at) * 1000 < LIVE_WITHIN_MS
        assert await page.locator("#stat-checked-in .value").inner_text() == "1"
        await screenshot(page, "must4-live-admission-desktop")

        # revoke it in the console
        row = page.locator("#gates tr:has-text('West Door')")
        await row.locator("button.revoke").click()
        await page.wait_for_selector("#gates tr[data-enabled='false']:has-text('West Door')")
        await screenshot(page, "must4-gate-revoked-desktop")

        # the gate's next scan is refused, and the gate says it is disabled (not offline)
        drop_ticket(gate.camera_dir, buy(central, buyer, seats[1]))
        scans = gate.wait_scans(2)
        assert scans[0]["result"] == "DISABLED", scans[0]
        status = gate.status()
        assert status["state"] == "disabled" and status["disabled"] is True, status
        async with httpx.AsyncClient(base_url=central.url, timeout=5) as http:
            refused = await http.post(
                "/api/gate/verify",
                headers={"Authorization": f"Bearer {match.group(1)}"},
                json={"qr_payload": "TR1:X", "scan_id": "after-revoke"},
            )
        assert (refused.status_code, refused.json()["error_code"]) == (401, "GATE_REVOKED")
        # and the gate's own staff page says so
        dashboard = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await dashboard.goto(f"http://127.0.0.1:{gate.port}/")
        await dashboard.fill("#pin", PIN)
        await dashboard.click("#login-button")
        await dashboard.locator("#gate-disabled").wait_for(state="visible")
        await screenshot(dashboard, "must4-gate-dashboard-disabled-desktop")
        # the second seat was never admitted
        seat = next(
            s
            for s in central.call("GET", f"/api/events/{event_id}")["seats"]
            if s["seat_id"] == seats[1]
        )
        assert seat["status"] == "SOLD"
        guard.check()
    finally:
        gate.stop()


async def console_login(page: Any, email: str) -> None:
    await page.goto("/admin/#/login")
    await page.fill("#login-form [name=email]", email)
    await page.fill("#login-form [name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#logout")


async def test_console_events_list_follows_sales_without_reload(
    central: Central, browser: Any
) -> None:
    event = make_event(central, hall="HALL-W6", name="Live List")
    buyer = login_token(central, make_user(central, credits=500))
    guard = Guard(central.url)
    page = await new_page(browser, guard, DESKTOP)
    await console_login(page, make_user(central, role="admin"))
    row = page.locator(f"tr[data-event-id='{event['event_id']}']")
    await row.wait_for()
    assert await row.locator("td.sold").inner_text() == "0"
    buy(central, buyer, event["seat_ids"][0])
    await row.locator("td.sold", has_text=re.compile(r"^1$")).wait_for(timeout=LIVE_WITHIN_MS)
    guard.check()


async def test_console_users_flag_role_and_credits(central: Central, browser: Any) -> None:
    email = make_user(central, credits=5)
    guard = Guard(central.url)
    page = await new_page(browser, guard, DESKTOP)
    await console_login(page, make_user(central, role="admin"))
    await page.goto("/admin/#/users")
    await page.fill("#user-search [name=email]", email.split("@")[0])
    await page.click("#user-search button[type=submit]")
    item = page.locator("#user-results li").filter(has_text=email)
    await item.wait_for()
    await item.locator("[name=role]").select_option("staff")
    await item.locator("[name=flagged]").check()
    await item.locator(".user-form button[type=submit]").click()
    await item.locator(".msg-ok", has_text="Saved").wait_for()
    await item.locator(".grant-form [name=amount]").fill("70")
    await item.locator(".grant-form button[type=submit]").click()
    await item.locator(".msg-ok", has_text="75 credits").wait_for()

    me = central.call("GET", "/api/me", login_token(central, email))
    assert (me["role"], me["flagged"], me["credit_balance"]) == ("staff", True, 75)
    guard.check()
