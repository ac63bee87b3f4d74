"""What the browser tests of the attendee app and the organiser console share: Chromium with
guards (no console error, no request to another host), codes from the file OTP backend, users and
events made through central's own CLI and API, screenshots, QR decoding and the axe-core check."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import zxingcpp
from PIL import Image

from tests.gate_agent.central_proc import REPO, Central, wait_until

ARTIFACTS = REPO / "test-artifacts" / "web"
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PASSWORD = "pw-123456789"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


# ----- central side -----


def otp_entry(central: Central, *, email: str, purpose: str, after: float = 0.0) -> dict[str, Any]:
    """The newest line the file OTP backend wrote for this address and purpose (sent after
    `after`, unix seconds): user_id, reference_id, code, …"""
    path = central.data_dir.parent / "otp.jsonl"

    def newest() -> dict[str, Any] | None:
        if not path.exists():
            return None
        found = None
        for line in path.read_text().splitlines():
            item = json.loads(line)
            if item["email"] == email and item["purpose"] == purpose:
                if not after or _unix(item["sent_at"]) >= after - 1:
                    found = item
        return found

    return dict(wait_until(newest, timeout=15))


def otp_code(central: Central, *, email: str, purpose: str, after: float = 0.0) -> str:
    return str(otp_entry(central, email=email, purpose=purpose, after=after)["code"])


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def new_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def make_user(central: Central, *, credits: int = 0, role: str = "customer") -> str:
    email = new_email(role)
    args = ["create-user", "--email", email, "--password", PASSWORD, "--role", role]
    if credits:
        args += ["--credits", str(credits)]
    central.admin(*args)
    return email


def make_event(
    central: Central, *, hall: str, name: str = "Web Test Night", price: int = 40
) -> dict[str, Any]:
    return central.admin(
        "create-event",
        "--name",
        name,
        "--hall",
        hall,
        "--rows",
        "3",
        "--seats-per-row",
        "6",
        "--price",
        str(price),
    )


def login_token(central: Central, email: str) -> str:
    data = central.call("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
    return str(data["access_token"])


def gate_verify(central: Central, device_token: str, payload: str) -> dict[str, Any]:
    """A scan through the gate API with the gate's own device token (central's clock judges)."""
    return dict(
        central.call(
            "POST",
            "/api/gate/verify",
            device_token,
            json={"qr_payload": payload, "scan_id": uuid.uuid4().hex},
        )
    )


# ----- browser side -----


@dataclass
class Guard:
    """Fails the test on a console error, an uncaught page error or a request to another host.
    Requests to another host are aborted by route interception and recorded."""

    origin: str
    # A flow that provokes refusals on purpose (a code that is wrong, a ticket checked in while
    # its QR renews) may allow Chromium's "Failed to load resource: … 4xx" lines; nothing else.
    allow_client_errors: bool = False
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    async def attach(self, context: Any) -> None:
        allowed = urlsplit(self.origin).netloc

        async def route(route: Any) -> None:
            parts = urlsplit(route.request.url)
            if parts.scheme in ("data", "blob") or parts.netloc == allowed:
                await route.continue_()
            else:
                self.foreign.append(route.request.url)
                await route.abort()

        await context.route("**/*", route)

    def watch(self, page: Any) -> Any:
        def on_console(msg: Any) -> None:
            if msg.type == "error" and not self._allowed(msg.text):
                self.errors.append(f"{page.url}: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    def _allowed(self, text: str) -> bool:
        return (
            self.allow_client_errors
            and "Failed to load resource: the server responded with a status of 4" in text
        )

    def check(self) -> None:
        assert not self.foreign, f"requests to another host: {self.foreign}"
        assert not self.errors, f"console errors: {self.errors}"


async def new_page(browser: Any, guard: Guard, viewport: dict[str, int] = PHONE) -> Any:
    context = await browser.new_context(viewport=viewport, base_url=guard.origin)
    await guard.attach(context)
    return guard.watch(await context.new_page())


# What a page served over plain http on a LAN address sees: no WebCrypto (it exists only in a
# secure context), so the ticket screen falls back to central's rotating TR1 codes.
WITHOUT_WEBCRYPTO = (
    "Object.defineProperty(Crypto.prototype, 'subtle', {get() { return undefined; }});"
)


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def decode_qr(png: Path) -> list[str]:
    with Image.open(png) as img:
        return [
            r.text
            for r in zxingcpp.read_barcodes(img.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
        ]


async def qr_on_screen(page: Any, name: str) -> str:
    """Screenshot the page as the phone shows it and decode the one QR code in it."""
    await page.wait_for_selector("#qr svg.qr")
    path = await screenshot(page, name)
    codes = decode_qr(path)
    assert len(codes) == 1, f"expected one QR code in {path}, found {codes}"
    return codes[0]


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core run in the page; evaluate() is not subject to the page's CSP, a script tag is."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE_JS.read_text())
    result = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


async def register_in_page(
    page: Any, central: Central, email: str, phone: str = "+15550100"
) -> str:
    """The attendee registers through the page with the code the OTP file received; returns
    the new user's id."""
    await page.goto("/#/register")
    await page.fill("#register-form [name=email]", email)
    await page.fill("#register-form [name=phone]", phone)
    await page.fill("#register-form [name=password]", PASSWORD)
    started = time.time()
    await page.click("#register-form button[type=submit]")
    await page.wait_for_selector("#verify-form")
    sent = otp_entry(central, email=email, purpose="registration", after=started)
    await page.fill("#verify-form [name=otp_code]", sent["code"])
    await page.click("#verify-form button[type=submit]")
    await page.wait_for_selector("#logout")
    await page.wait_for_url(lambda url: url.endswith("#/events"))
    return str(sent["user_id"])


async def login_in_page(page: Any, email: str, hash_: str = "#/login") -> None:
    await page.goto(f"/{hash_}")
    await page.fill("#login-form [name=email]", email)
    await page.fill("#login-form [name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#logout")
    await page.wait_for_url(lambda url: "#/login" not in url)


async def buy_from_map(page: Any, event_id: str, row: str, number: int) -> str:
    """Pick the seat on the map, hold it, pay; returns its seat id."""
    await page.goto(f"/#/events/{event_id}")
    seat = page.locator(f'.seat[data-row="{row}"][data-number="{number}"]')
    seat_id = str(await seat.get_attribute("data-seat-id"))
    await seat.click()
    await page.click("#hold-button")
    await page.wait_for_selector("#pay-button")
    await page.click("#pay-button")
    await page.wait_for_selector("#open-ticket", timeout=15_000)
    return seat_id
