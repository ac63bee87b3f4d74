"""The demo provider's checkout page in headless Chromium (Debian's chromium through Playwright):
the page shows the top-up's amount, the "Pay" button completes it once, the balance grows by the
stored amount, and the page runs under its CSP without a violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster import running_cluster
from conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from purchase_support import balance

pytestmark = needs_chromium


async def test_the_pay_button_credits_the_topup_once(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with running_cluster(tmp_path) as c:
        user = await c.make_user(credits=5)
        status, body = await c.call(
            "POST", "/api/credits/topup", json_body={"amount": 45}, token=user["token"]
        )
        assert status == 201, body
        url = body["data"]["checkout_url"]
        assert CHROMIUM
        problems: list[str] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()

                def on_console(msg: Any) -> None:
                    # a failed load is judged by its response below (the browser's own
                    # favicon request is no part of the page)
                    if msg.type == "error" and "Failed to load resource" not in msg.text:
                        problems.append(msg.text)

                def on_response(response: Any) -> None:
                    if response.status >= 400 and not response.url.endswith("/favicon.ico"):
                        problems.append(f"{response.status} {response.url}")

                page.on("console", on_console)
                page.on("response", on_response)
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                await page.goto(url)
                await expect(page.locator("#status")).to_have_text("PENDING")
                assert await page.text_content("#amount") == "45"
                await page.click("#pay")
                await expect(page.locator("#status")).to_have_text("PAID")
                await expect(page.locator("#message")).to_contain_text("50 credits")
                assert await page.is_disabled("#pay")
                await page.reload()  # a second visit cannot pay again
                await expect(page.locator("#status")).to_have_text("PAID")
                assert await page.is_disabled("#pay")
            finally:
                await browser.close()
        assert problems == []
        assert await balance(c, user["user_id"]) == 50
