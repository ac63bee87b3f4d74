"""Issue 10, must show 2: the ticket screen replaces its QR before the code's 60 s run out (the
page's clock moved with Playwright's clock control), and a code taken from the page and shown
61 s later is EXPIRED at the gate.

How "61 s later" is made honestly: central signs every code with its own clock and judges
freshness with its own clock when a scan arrives (api-contract: "Freshness is judged by central's
clock when the scan arrives"); `python -m central serve` has no clock a test could move, and an
offline upload dated in central's future is refused. So the code decoded from the page is presented
through the gate verify API (the gate's device token) once central's own clock — read from its
X-Server-Time header, not the test's — has passed the code's issue time + 61 s: a bounded wait of
about a minute for central's clock, not a fake. Meanwhile the page keeps running, and the code it
shows at that moment is admitted (SUCCESS): the refusal is the old code's age, nothing else."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from conftest import needs_chromium

from proto.ticket_token import parse_token
from tests.gate_agent.central_proc import Central
from tests.web.support import (
    WITHOUT_WEBCRYPTO,
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

TTL_S = 60
REPLACE_BEFORE_EXPIRY_S = 20  # the page's margin (ticket.js)


def issued_at(code: str) -> int:
    claims = parse_token(code)
    assert claims is not None, code
    return claims.issued_at


def central_time(central: Central) -> float:
    return float(httpx.get(central.url + "/api/events", timeout=5).headers["X-Server-Time"])


async def eventually(check: Any, timeout: float) -> None:
    """Poll without blocking the event loop Playwright's page events arrive on."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        await asyncio.sleep(0.1)


def countdown_seconds(text: str) -> int:
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + int(seconds)


async def test_qr_replaced_before_expiry_and_61s_old_code_expired(
    central: Central, browser: Any
) -> None:
    event = make_event(central, hall="HALL-W2", name="Rotation")
    gate = central.admin("add-gate", "--hall", "HALL-W2", "--name", "East")
    email = make_user(central, credits=100)
    token = login_token(central, email)
    seat_id = event["seat_ids"][0]
    order = central.call("POST", "/api/reserve", token, json={"seat_id": seat_id})
    central.call("POST", "/api/pay", token, json={"order_id": order["order_id"]})

    guard = Guard(central.url)
    page = await new_page(browser, guard)
    # central's own codes (TR1): the phone-made TR2 codes have their own test
    await page.add_init_script(WITHOUT_WEBCRYPTO)
    qr_answers: list[tuple[float, int]] = []  # (when, HTTP status): the failure message shows them
    page.on(
        "response",
        lambda r: qr_answers.append((time.time(), r.status)) if r.url.endswith("/qr") else None,
    )
    await page.clock.install()
    await login_in_page(page, email)
    await page.goto(f"/#/tickets/{seat_id}")
    first = await qr_on_screen(page, "must2-first-code")
    first_issued = issued_at(first)
    countdown = page.locator("#qr-countdown")
    assert countdown_seconds(await countdown.inner_text()) >= TTL_S - 3

    # central's second must roll over, or a replacement signed at once would be the same text
    await eventually(lambda: central_time(central) >= first_issued + 1, 3)

    # 35 s later on the page's clock: the same code, its countdown following
    await page.clock.fast_forward("00:35")
    left = countdown_seconds(await countdown.inner_text())
    assert TTL_S - 35 - 3 <= left <= TTL_S - 35 + 1, left
    assert await qr_on_screen(page, "must2-at-35s") == first, qr_answers

    # 42 s: past the page's replacement point, well before the 60 s run out
    await page.clock.fast_forward("00:07")
    # the countdown starts again near a full minute once the new code is on screen
    await page.wait_for_function(
        """() => {
          const [m, s] = document.querySelector('#qr-countdown').textContent.split(':');
          return Number(m) * 60 + Number(s) >= 55;
        }""",
        polling=100,
        timeout=10_000,
    )
    second = await qr_on_screen(page, "must2-replaced")
    assert second != first, qr_answers
    assert issued_at(second) > first_issued

    # The code first taken from the page, shown 61 s after central issued it
    await eventually(lambda: central_time(central) >= first_issued + TTL_S + 1, TTL_S + 15)
    late = gate_verify(central, gate["device_token"], first)
    assert late["result"] == "EXPIRED", late

    # the page kept renewing meanwhile: what it shows now is admitted
    current = await qr_on_screen(page, "must2-current")
    assert issued_at(current) > first_issued + REPLACE_BEFORE_EXPIRY_S
    assert gate_verify(central, gate["device_token"], current)["result"] == "SUCCESS"
    guard.check()
