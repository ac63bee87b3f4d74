"""GET /api/docs renders the OpenAPI document with the package's own files: no inline script,
nothing from another host, every string as text (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cluster import running_cluster
from conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium

PAGE_FILES = Path(__file__).resolve().parents[2] / "central" / "orchestrator" / "apidocs"


async def test_the_page_and_its_files_are_served_with_a_strict_policy(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        resp = await c.session.get(c.url + "/api/docs")
        html = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        for asset in re.findall(r'(?:src|href)="(/api/docs/[^"]+)"', html):
            got = await c.session.get(c.url + asset)
            assert got.status == 200, asset
        missing = await c.session.get(c.url + "/api/docs/../app.py")
        assert missing.status == 404
    assert "<script>" not in html and "http" not in html.split("<body>")[0]
    script = (PAGE_FILES / "apidocs.js").read_text()
    assert "innerHTML" not in script and "https://" not in script


@needs_chromium
async def test_the_page_lists_every_operation_in_chromium(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    async with running_cluster(tmp_path) as c:
        status, spec = await c.call("GET", "/api/openapi.json")
        operations = sum(len(methods) for methods in spec["paths"].values())
        errors: list[str] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page: Any = await browser.new_page()
                # failed loads are checked by URL below (the browser's own /favicon.ico is not
                # the page's); anything else the console reports as an error fails the test
                page.on(
                    "console",
                    lambda m: (
                        errors.append(m.text)
                        if m.type == "error" and not m.text.startswith("Failed to load resource")
                        else None
                    ),
                )
                page.on(
                    "response",
                    lambda r: (
                        errors.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico")
                        else None
                    ),
                )
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(c.url + "/api/docs")
                await page.wait_for_selector("section.op")
                assert await page.locator("section.op").count() == operations
                register = page.locator("section.op", has_text="/api/auth/register")
                assert "password" in await register.inner_text()
                # the answer's model and its fields, a list's items' too
                tickets = page.locator("section.op", has_text="GET/api/tickets")
                text = await tickets.first.inner_text()
                assert "answers 200: TicketList" in text and "checked_in_gate" in text, text
                await page.fill("#filter", "transfer confirm")
                visible = page.locator("section.op:not(.hidden)")
                assert await visible.count() == 1
                assert "/api/transfer/confirm" in await visible.inner_text()
            finally:
                await browser.close()
        assert status == 200
        assert errors == []
