"""The attendee app's other paths in Chromium: a flagged buyer's OTP step, "not enough credits"
with balance and price, tokens refreshed in the background before they expire, logout ending the
access token at central, and a dispute filed in the app that the organiser reverses in the console."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from conftest import needs_chromium

from tests.gate_agent.central_proc import Central
from tests.web.support import (
    PASSWORD,
    Guard,
    login_in_page,
    login_token,
    make_event,
    make_user,
    new_email,
    new_page,
    otp_code,
    otp_entry,
    screenshot,
)

pytestmark = needs_chromium


async def hold_and_pay(page: Any, event_id: str, row: str, number: int) -> None:
    await page.goto(f"/#/events/{event_id}")
    await page.click(f'.seat[data-row="{row}"][data-number="{number}"]')
    await page.click("#hold-button")
    await page.click("#pay-button")


async def test_flagged_buyer_enters_the_code_then_pays(central: Central, browser: Any) -> None:
    event = make_event(central, hall="HALL-E1", price=40)
    email = new_email("flagged")
    central.admin(
        "create-user", "--email", email, "--password", PASSWORD, "--credits", "100", "--flagged"
    )
    guard = Guard(central.url, allow_client_errors=True)  # the 428 that asks for the code
    page = await new_page(browser, guard)
    await login_in_page(page, email)
    started = time.time()
    await hold_and_pay(page, event["event_id"], "A", 2)
    await page.wait_for_selector("#purchase-otp-form")
    await screenshot(page, "attendee-purchase-otp-phone")
    assert await page.locator("#open-ticket").count() == 0  # nothing paid before the code
    first = otp_entry(central, email=email, purpose="purchase", after=started)
    # a new code on request; the newest one is the one that works
    await page.click("#purchase-otp-form >> text=Send a new code")
    await page.wait_for_selector("#purchase-otp-form .msg-ok")
    newest = otp_entry(central, email=email, purpose="purchase", after=started)
    assert newest["sent_at"] > first["sent_at"]
    await page.fill("#purchase-otp-form [name=otp_code]", newest["code"])
    await page.click("#purchase-otp-form button[type=submit]")
    await page.wait_for_selector("#open-ticket")
    assert "Balance now 60 credits" in await page.locator("#selection").inner_text()
    guard.check()


async def test_not_enough_credits_shows_balance_and_price(central: Central, browser: Any) -> None:
    event = make_event(central, hall="HALL-E2", price=40)
    email = make_user(central, credits=25)
    guard = Guard(central.url, allow_client_errors=True)  # the 402 it shows
    page = await new_page(browser, guard)
    await login_in_page(page, email)
    await hold_and_pay(page, event["event_id"], "C", 6)
    shown = page.locator("#insufficient")
    await shown.wait_for()
    text = await shown.inner_text()
    assert "Your balance: 25 credits" in text and "Price: 40 credits" in text, text
    await screenshot(page, "attendee-insufficient-phone")
    guard.check()


async def stored_session(page: Any) -> dict[str, Any]:
    return dict(json.loads(await page.evaluate("localStorage.getItem('tr.attendee')")))


async def test_tokens_refreshed_in_background_and_logout_ends_the_session(
    central: Central, browser: Any
) -> None:
    email = make_user(central, credits=10)
    guard = Guard(central.url)
    page = await new_page(browser, guard)
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if "/api/auth/refresh" in r.url else None)
    await page.clock.install()
    await login_in_page(page, email, "#/credits")
    first = await stored_session(page)

    # 14 of the access token's 15 minutes pass on the phone: the page renews it by itself
    await page.clock.fast_forward("14:05")
    await page.wait_for_function(
        "first => JSON.parse(localStorage.getItem('tr.attendee')).access !== first",
        arg=first["access"],
        polling=100,
    )
    assert len(refreshes) == 1
    renewed = await stored_session(page)
    await page.goto("/#/tickets")
    await page.wait_for_selector("#ticket-list")

    await page.click("#logout")
    await page.wait_for_selector("#login-form")
    assert await page.evaluate("localStorage.getItem('tr.attendee')") is None
    async with httpx.AsyncClient(base_url=central.url, timeout=5) as http:
        # the worker that took the logout refuses the token at once, every other worker within
        # its next revocation-feed poll (250 ms; `serve` runs one worker per core): a bounded wait
        deadline = time.monotonic() + 2
        while True:
            refused = await http.get(
                "/api/me", headers={"Authorization": f"Bearer {renewed['access']}"}
            )
            if refused.status_code == 401 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert refused.status_code == 401, refused.text
        # the whole session ended: no new access token from the refresh token either
        minted = await http.post(
            "/api/auth/refresh", headers={"Authorization": f"Bearer {renewed['refresh']}"}
        )
        assert minted.status_code == 401, minted.text
    guard.check()


async def test_dispute_in_the_app_reversed_in_the_console(central: Central, browser: Any) -> None:
    event = make_event(central, hall="HALL-E3", price=20)
    seller, buyer = make_user(central, credits=100), make_user(central, credits=100)
    admin = make_user(central, role="admin")
    seller_token, buyer_token = login_token(central, seller), login_token(central, buyer)
    seat_id = event["seat_ids"][0]
    order = central.call("POST", "/api/reserve", seller_token, json={"seat_id": seat_id})
    central.call("POST", "/api/pay", seller_token, json={"order_id": order["order_id"]})
    started = time.time()
    offer = central.call(
        "POST",
        "/api/transfer/initiate",
        seller_token,
        json={"seat_id": seat_id, "buyer_email": buyer, "credits_amount": 10},
    )
    transfer_id = offer["transfer_id"]
    for email, token in ((seller, seller_token), (buyer, buyer_token)):
        code = otp_code(central, email=email, purpose="transfer", after=started)
        central.call(
            "POST",
            "/api/transfer/confirm",
            token,
            json={"transfer_id": transfer_id, "otp_code": code},
        )

    guard = Guard(central.url)
    page = await new_page(browser, guard)
    await login_in_page(page, buyer, "#/login")
    await page.goto("/#/transfers")
    row = page.locator(f"#transfers-in li[data-transfer-id='{transfer_id}']")
    await row.locator("summary").click()
    await row.locator("[name=reason]").fill("the seller promised row B")
    await row.locator("button[type=submit]").click()
    await page.wait_for_selector(
        f"#transfers-in li[data-transfer-id='{transfer_id}'][data-status='DISPUTED']"
    )

    console = await new_page(browser, guard)
    console.on("dialog", lambda d: d.accept())
    await console.goto("/admin/#/login")
    await console.fill("#login-form [name=email]", admin)
    await console.fill("#login-form [name=password]", PASSWORD)
    await console.click("#login-form button[type=submit]")
    await console.wait_for_selector("#logout")
    await console.goto("/admin/#/transfers")
    item = console.locator(f"#disputes li[data-transfer-id='{transfer_id}']")
    assert "the seller promised row B" in await item.inner_text()
    await item.locator("button.reverse").click()
    await item.locator(".msg-ok").wait_for()
    seller_tickets = central.call("GET", "/api/tickets", seller_token)
    assert [t["seat_id"] for t in seller_tickets] == [seat_id]
    guard.check()
