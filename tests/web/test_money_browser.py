"""Issue 14 in the browser: an attendee tops up through the demo checkout and sees the balance and
a Top-up entry; an organiser refunds one order and cancels an event in the console, and the
attendee sees the event cancelled, the tickets refunded and Refund entries; an organiser closes a
dispute in the console and the seller's hold ends. Screens at 390×844 and 1280×800 go to
test-artifacts/web/, each checked with axe-core (no serious or critical violation)."""

from __future__ import annotations

import re
from typing import Any

from conftest import needs_chromium

from tests.gate_agent.central_proc import Central
from tests.web.support import (
    DESKTOP,
    PHONE,
    Guard,
    axe_violations,
    login_in_page,
    login_token,
    make_event,
    make_user,
    new_page,
    screenshot,
)
from tests.web.test_console import console_login
from tests.web.test_pages import transfer_and_dispute

pytestmark = needs_chromium

# the cancellation waits for every orchestrator's event cache to expire (5 s) before refunding
CANCEL_WITHIN_MS = 30_000


async def screens(page: Any, name: str) -> None:
    """The page as a phone and as a desktop shows it, each checked with axe-core."""
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        await page.evaluate("document.fonts.ready")
        await screenshot(page, f"{name}-{size}")
        assert await axe_violations(page) == [], f"{name}-{size}"
    await page.set_viewport_size(PHONE)


def buy(central: Central, token: str, seat_id: str) -> str:
    order = central.call("POST", "/api/reserve", token, json={"seat_id": seat_id})
    central.call("POST", "/api/pay", token, json={"order_id": order["order_id"]})
    return str(order["order_id"])


async def test_attendee_tops_up_through_the_demo_checkout(central: Central, browser: Any) -> None:
    email = make_user(central, credits=10)
    guard = Guard(central.url)
    page = await new_page(browser, guard)
    await login_in_page(page, email, "#/credits")
    await page.wait_for_selector("#topup-form")
    assert await page.locator("#balance").inner_text() == "10 credits"
    await screens(page, "attendee-credits-topup")

    await page.fill("#topup-form [name=amount]", "125")
    await page.click("#topup-form button[type=submit]")
    # the app hands over to the provider's page: the demo checkout on central itself
    await page.wait_for_url(re.compile(r"/pay/demo/[0-9a-f-]{36}#.+"))
    await page.locator("#amount", has_text="125").wait_for()
    await screens(page, "demo-checkout")
    await page.click("#pay")
    await page.locator("#message", has_text="Paid").wait_for()
    await page.click("#back")

    # back in the app: the Credits page follows the top-up and shows the new balance
    await page.locator("#topup-status .msg-ok", has_text="125 credits").wait_for()
    await page.locator("#balance", has_text="135 credits").wait_for()
    entry = page.locator("#credit-history tr[data-kind=TOPUP]")
    assert await entry.locator(".kind").inner_text() == "Top-up"
    assert "+125" in await entry.inner_text()
    await screens(page, "attendee-credits-topped-up")

    me = central.call("GET", "/api/me", login_token(central, email))
    assert me["credit_balance"] == 135
    guard.check()


async def test_console_refunds_an_order_and_cancels_the_event_attendee_sees_it(
    central: Central, browser: Any
) -> None:
    event = make_event(central, hall="HALL-M1", name="Rained <Off>", price=40)
    event_id = event["event_id"]
    attendee = make_user(central, credits=200)
    token = login_token(central, attendee)
    refunded_alone = buy(central, token, event["seat_ids"][0])
    buy(central, token, event["seat_ids"][1])
    assert central.call("GET", "/api/me", token)["credit_balance"] == 120

    guard = Guard(central.url)
    # the attendee's ticket names its order: what the organiser asks for to refund it
    page = await new_page(browser, guard)
    await login_in_page(page, attendee, "#/tickets")
    ref = page.locator(f".card[data-seat-id='{event['seat_ids'][0]}'] .order-ref")
    assert await ref.inner_text() == f"Order {refunded_alone}"

    admin = await new_page(browser, guard, DESKTOP)
    await console_login(admin, make_user(central, role="admin"))
    await admin.goto(f"/admin/#/events/{event_id}")
    await admin.locator("#event-status", has_text="SCHEDULED").wait_for()

    # one order refunded by its id
    await admin.fill("#refund-form [name=order_id]", refunded_alone)
    await admin.click("#refund-order")
    await admin.click("#confirm-refund")
    await admin.locator("#refund-status .msg-ok", has_text="40 credits").wait_for()
    assert central.call("GET", "/api/me", token)["credit_balance"] == 160

    # the whole event cancelled, with a confirm step
    await admin.fill("#cancel-event-form [name=reason]", "Storm <warning>")
    await admin.click("#cancel-event")
    await admin.wait_for_selector("#confirm-cancel")
    await screens(admin, "console-cancel-confirm")
    await admin.click("#confirm-cancel")
    await admin.locator("#cancel-status .msg-ok", has_text="orders refunded").wait_for(
        timeout=CANCEL_WITHIN_MS
    )
    await admin.locator("#event-status", has_text=re.compile(r"^CANCELLED$")).wait_for()
    await admin.locator("#stat-refunded .value", has_text=re.compile(r"^2$")).wait_for()
    assert await admin.locator("#cancel-event-form").count() == 0
    await screens(admin, "console-event-cancelled")

    # the attendee: the event says cancelled (the reason as text), nothing to buy, tickets refunded
    await page.goto("/#/events")
    card = page.locator(f".card[data-event-id='{event_id}']")
    await card.locator(".event-cancelled", has_text="Cancelled").wait_for()
    await page.goto(f"/#/events/{event_id}")
    notice = page.locator("#event-cancelled")
    await notice.wait_for()
    assert "Reason: Storm <warning>" in await notice.inner_text()
    assert await page.locator(".seat").count() == 0
    await screens(page, "attendee-event-cancelled")

    await page.goto("/#/tickets")
    await page.wait_for_selector("#refunded-list")
    assert await page.locator("#ticket-list .card").count() == 0
    assert await page.locator("#refunded-list li").count() == 2
    await page.locator("#who-balance", has_text="200 credits").wait_for()
    await screens(page, "attendee-tickets-refunded")

    await page.goto("/#/credits")
    await page.locator("#balance", has_text="200 credits").wait_for()
    refunds = page.locator("#credit-history tr[data-kind=REFUND]")
    assert await refunds.count() == 2
    assert await refunds.first.locator(".kind").inner_text() == "Refund"
    await screens(page, "attendee-credits-refunds")
    guard.check()


async def test_console_closes_a_dispute_and_the_seller_sees_it(
    central: Central, browser: Any
) -> None:
    event = make_event(central, hall="HALL-M2", name="Disputed Night")
    seller, buyer = make_user(central, credits=100), make_user(central, credits=100)
    seat_id = event["seat_ids"][0]
    buy(central, login_token(central, seller), seat_id)
    transfer_and_dispute(central, seller, buyer, seat_id)

    guard = Guard(central.url)
    page = await new_page(browser, guard)
    await login_in_page(page, seller, "#/transfers")
    offer = page.locator("#transfers-out li.transfer[data-status=DISPUTED]")
    await offer.locator(".dispute-state", has_text="15 credits of your balance are held").wait_for()
    await screens(page, "attendee-transfer-disputed")

    admin = await new_page(browser, guard, DESKTOP)
    await console_login(admin, make_user(central, role="admin"))
    await admin.goto("/admin/#/transfers")
    item = admin.locator("#disputes li").filter(has_text=seller)
    await item.wait_for()
    await screens(admin, "console-disputes-close")
    await item.locator(".close-dispute").click()
    await item.locator(".msg-ok", has_text="15 credits released").wait_for()

    seller_token = login_token(central, seller)
    (transfer,) = central.call("GET", "/api/transfers?role=seller", seller_token)
    assert transfer["status"] == "COMPLETED"
    await page.goto("/#/transfers")
    closed = page.locator("#transfers-out li.transfer[data-status=COMPLETED]")
    await closed.locator(".dispute-state", has_text="Dispute closed").wait_for()
    guard.check()
