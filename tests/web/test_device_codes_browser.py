"""Issue 17, must show 1 and 2, in Debian's Chromium: the ticket page binds the phone (a WebCrypto
P-256 key that never leaves it, certified by central) and then makes TR2 codes by itself.

1. Opened online, then the browser context goes offline; with the page clock advanced in steps over
   10 minutes, every code taken from the screen is admitted by a gate once (SUCCESS, then DUPLICATE),
   and a code shown 61 s after it was made is EXPIRED. "A gate" here is the gate agent's own offline
   judgement (gate_agent.verifier: both signatures, the 60 s window, the manifest synced from central
   while online) at the page's time: central's clock cannot be moved 10 minutes, and an offline gate
   is exactly what must admit these codes when the network is gone.
2. A second browser context binds the same ticket: the first one's fresh codes are refused with
   `device_replaced` by central online and by an offline gate after a manifest sync; the first page,
   reloaded, says the ticket was opened on another phone instead of showing dead codes."""

from __future__ import annotations

import time
from typing import Any

from conftest import needs_chromium

from gate_agent.verifier import Manifest, decide_offline, local_check
from proto.ticket_token import parse_token
from tests.gate_agent.central_proc import Central
from tests.web.support import (
    Guard,
    gate_verify,
    login_in_page,
    login_token,
    make_event,
    make_user,
    new_page,
    qr_on_screen,
)

pytestmark = needs_chromium

STEPS = 10  # one a minute: 10 minutes of offline codes


def bought_ticket(central: Central, hall: str) -> tuple[str, str, dict[str, Any]]:
    event = make_event(central, hall=hall, name="Phone codes")
    gate = central.admin("add-gate", "--hall", hall, "--name", "North")
    email = make_user(central, credits=100)
    token = login_token(central, email)
    seat_id = event["seat_ids"][0]
    order = central.call("POST", "/api/reserve", token, json={"seat_id": seat_id})
    central.call("POST", "/api/pay", token, json={"order_id": order["order_id"]})
    return email, seat_id, gate


def synced_manifest(central: Central, gate: dict[str, Any]) -> Manifest:
    manifest = Manifest()
    manifest.apply(central.call("GET", "/api/gate/manifest", gate["device_token"]))
    return manifest


async def open_ticket(page: Any, email: str, seat_id: str) -> None:
    await login_in_page(page, email)
    await page.goto(f"/#/tickets/{seat_id}")
    await page.wait_for_selector("#device-note:has-text('without network')")


async def next_code(page: Any, previous: str | None, name: str) -> str:
    """The code on screen once the page has drawn a new one (read back from the screenshot)."""
    await page.wait_for_function(
        "prev => { const q = document.querySelector('#qr');"
        " return q && q.dataset.payload && q.dataset.payload !== prev; }",
        arg=previous or "",
        polling=100,
        timeout=10_000,
    )
    code = await qr_on_screen(page, name)
    assert code.startswith("TR2:") and len(code) == 300, code
    return code


async def test_offline_codes_over_ten_minutes(central: Central, browser: Any) -> None:
    email, seat_id, gate = bought_ticket(central, "HALL-T2A")
    guard = Guard(central.url)
    page = await new_page(browser, guard)
    await page.clock.install()
    await open_ticket(page, email, seat_id)
    manifest = synced_manifest(central, gate)  # what the gate pulled while it was online
    assert manifest.seats[seat_id]["device_serial"] == 1

    await page.context.set_offline(True)
    # the page's time minus central's, at the start (one machine: about zero)
    skew = await page.evaluate("Date.now()") / 1000 - time.time()
    code: str | None = None
    for step in range(STEPS):
        await page.clock.fast_forward("01:00")
        code = await next_code(page, code, f"tr2-offline-{step}")
        gate_now = await page.evaluate("Date.now()") / 1000 - skew
        claims = parse_token(code)
        assert claims is not None and abs(claims.issued_at - gate_now) <= 6, (claims, gate_now)

        verdict = local_check(code, manifest.keys, gate_now, clock_known=True)
        assert verdict.ok and verdict.claims is not None, verdict
        assert verdict.claims.device_serial == 1
        admitted_here: set[str] = set()
        first = decide_offline(verdict.claims, manifest, admitted_here, gate_now)
        assert first.result == "SUCCESS", (step, first)
        admitted_here.add(seat_id)
        again = decide_offline(verdict.claims, manifest, admitted_here, gate_now)
        assert again.result == "DUPLICATE", (step, again)

        late = local_check(code, manifest.keys, claims.issued_at + 61, clock_known=True)
        assert late.result == "EXPIRED", (step, late)
    assert step == STEPS - 1
    guard.check()


async def test_binding_from_another_phone_replaces_the_first(
    central: Central, browser: Any
) -> None:
    email, seat_id, gate = bought_ticket(central, "HALL-T2B")
    guard = Guard(central.url, allow_client_errors=True)
    first = await new_page(browser, guard)
    await open_ticket(first, email, seat_id)
    code_a = await next_code(first, None, "tr2-first-phone")
    assert parse_token(code_a).device_serial == 1  # type: ignore[union-attr]

    second = await new_page(browser, guard)  # another browser context: another phone
    await open_ticket(second, email, seat_id)
    code_b = await next_code(second, None, "tr2-second-phone")
    assert parse_token(code_b).device_serial == 2  # type: ignore[union-attr]

    # the first phone keeps making codes, which are refused from now on
    fresh_a = await next_code(first, code_a, "tr2-first-phone-after")
    online = gate_verify(central, gate["device_token"], fresh_a)
    assert (online["result"], online.get("reason")) == ("INVALID", "device_replaced"), online
    manifest = synced_manifest(central, gate)
    verdict = local_check(fresh_a, manifest.keys, time.time(), clock_known=True)
    assert verdict.ok and verdict.claims is not None
    offline = decide_offline(verdict.claims, manifest, set(), time.time())
    assert offline.result == "INVALID" and "device_replaced" in offline.message, offline

    # the second phone's code is admitted once
    assert gate_verify(central, gate["device_token"], code_b)["result"] == "SUCCESS"
    assert gate_verify(central, gate["device_token"], code_b)["result"] == "DUPLICATE"


async def test_a_replaced_phone_says_so_instead_of_showing_dead_codes(
    central: Central, browser: Any
) -> None:
    email, seat_id, _gate = bought_ticket(central, "HALL-T2C")
    guard = Guard(central.url)
    first = await new_page(browser, guard)
    await open_ticket(first, email, seat_id)
    second = await new_page(browser, guard)
    await open_ticket(second, email, seat_id)

    await first.reload()
    await first.wait_for_selector("#use-this-phone")
    assert "another phone" in await first.locator("#device-note").inner_text()
    # taking it back is the owner's choice: one click binds this phone again
    await first.click("#use-this-phone")
    await first.wait_for_selector("#device-note:has-text('without network')")
    code = await next_code(first, None, "tr2-taken-back")
    assert parse_token(code).device_serial == 3  # type: ignore[union-attr]
    guard.check()
