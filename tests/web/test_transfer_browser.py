"""Issue 10, must show 3: two browser contexts (seller and buyer, each logged in on their own
phone): the seller offers a ticket to the buyer's e-mail at a price, the buyer sees it in their
transfers, both confirm with their own codes (from the file OTP backend); afterwards the seller's
ticket list no longer has it, the buyer's has it, and the seller's old code is TRANSFERRED."""

from __future__ import annotations

import time
from typing import Any

from conftest import needs_chromium

from tests.gate_agent.central_proc import Central
from tests.web.support import (
    Guard,
    gate_verify,
    login_in_page,
    login_token,
    make_event,
    make_user,
    new_page,
    otp_code,
    qr_on_screen,
    screenshot,
)

pytestmark = needs_chromium


async def confirm_in_page(page: Any, section: str, transfer_id: str, code: str) -> None:
    form = page.locator(f"{section} .confirm-form[data-transfer-id='{transfer_id}']")
    await form.locator("[name=otp_code]").fill(code)
    await form.locator("button[type=submit]").click()


async def test_two_contexts_transfer_a_ticket(central: Central, browser: Any) -> None:
    event = make_event(central, hall="HALL-W3", name="Transfer Gala")
    gate = central.admin("add-gate", "--hall", "HALL-W3", "--name", "South")
    seller_email = make_user(central, credits=100)
    buyer_email = make_user(central, credits=100)
    token = login_token(central, seller_email)
    seat_id = event["seat_ids"][4]
    order = central.call("POST", "/api/reserve", token, json={"seat_id": seat_id})
    central.call("POST", "/api/pay", token, json={"order_id": order["order_id"]})

    guard = Guard(central.url)
    seller = await new_page(browser, guard)
    buyer = await new_page(browser, guard)
    await login_in_page(seller, seller_email)
    await login_in_page(buyer, buyer_email)

    # the seller's code as their phone shows it, just before the offer
    await seller.goto(f"/#/tickets/{seat_id}")
    old_code = await qr_on_screen(seller, "must3-seller-ticket")

    await seller.click("#offer-link")
    await seller.wait_for_selector(f"#offer-form option[value='{seat_id}']", state="attached")
    assert await seller.locator("#offer-form [name=seat_id]").input_value() == seat_id
    await seller.fill("#offer-form [name=buyer_email]", buyer_email)
    await seller.fill("#offer-form [name=credits_amount]", "30")
    offered = time.time()
    await seller.click("#offer-form button[type=submit]")
    await seller.wait_for_selector("#offer-status .msg-ok")
    row = seller.locator("#transfers-out li.transfer").first
    transfer_id = str(await row.get_attribute("data-transfer-id"))
    assert await row.get_attribute("data-status") == "PENDING_OTP"

    # the buyer sees the offer among the transfers offered to them
    await buyer.goto("/#/transfers")
    offer = buyer.locator(f"#transfers-in li[data-transfer-id='{transfer_id}']")
    await offer.wait_for()
    offer_text = await offer.inner_text()
    assert seller_email in offer_text and "30 credits" in offer_text
    await screenshot(buyer, "must3-buyer-offer")

    seller_code = otp_code(central, email=seller_email, purpose="transfer", after=offered)
    buyer_code = otp_code(central, email=buyer_email, purpose="transfer", after=offered)
    await confirm_in_page(seller, "#transfers-out", transfer_id, seller_code)
    await seller.wait_for_selector(
        f"#transfers-out li[data-transfer-id='{transfer_id}'] >> text=waiting for the other party"
    )
    await confirm_in_page(buyer, "#transfers-in", transfer_id, buyer_code)
    await buyer.wait_for_selector(
        f"#transfers-in li[data-transfer-id='{transfer_id}'][data-status='COMPLETED']"
    )
    # the seller's open page picks the outcome up by itself (it polls)
    await seller.wait_for_selector(
        f"#transfers-out li[data-transfer-id='{transfer_id}'][data-status='COMPLETED']",
        timeout=10_000,
    )
    await screenshot(seller, "must3-seller-completed")

    await seller.goto("/#/tickets")
    await seller.wait_for_selector("#ticket-list")
    assert await seller.locator(f"#ticket-list [data-seat-id='{seat_id}']").count() == 0
    await buyer.goto("/#/tickets")
    await buyer.wait_for_selector(f"#ticket-list [data-seat-id='{seat_id}']")
    await screenshot(buyer, "must3-buyer-tickets")

    verdict = gate_verify(central, gate["device_token"], old_code)
    assert verdict["result"] == "TRANSFERRED", verdict
    guard.check()
