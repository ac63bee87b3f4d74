"""A revoked gate (issue 10): central answers its device token 401 GATE_REVOKED, and the gate
treats that as "disabled", not as "offline" — it refuses every scan, online and from its manifest
(also with central unreachable, also after a restart), logs each refused scan in its outbox, and
says "disabled" on its lights, in /api/status and on its dashboard page."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import needs_chromium
from gpiozero.pins.mock import MockFactory

from gate_agent.central_client import CentralRevoked
from gate_agent.decider import DISABLED
from gate_agent.outbox import Outbox
from gate_agent.revocation import Revocation
from hardware.indicators import FakeIndicator, GpioIndicator
from tests.gate_agent.central_proc import Venue, drop_ticket, wait_until
from tests.gate_agent.gate_proc import PIN, GateProc
from tests.gate_agent.offline_world import make_world

FAST = ("--sync-interval-s", "1")


def show(gate: GateProc, code: str) -> dict[str, Any]:
    """Shows one code to the gate's camera and answers the verdict it produced."""
    before = len(gate.scans())
    time.sleep(0.7)  # longer than --dedup-s: each showing is a fresh one
    assert gate.camera_dir is not None
    drop_ticket(gate.camera_dir, code)
    return gate.wait_scans(before + 1)[0]


def revoke(venue: Venue) -> None:
    venue.central.call("DELETE", f"/api/admin/gates/{venue.gate_id}", venue.admin_token)


def test_revoked_gate_refuses_online_offline_and_after_restart(
    venue: Venue, tmp_path: Path
) -> None:
    central = venue.central
    seats = venue.seat_ids[:4]
    for seat in seats:
        venue.buy(seat)
    gate = GateProc(central.url, venue.gate_token, tmp_path)
    gate.start(*FAST)
    try:
        wait_until(
            lambda: gate.status()["online"] and gate.status()["manifest"]["seats"] >= 4, timeout=30
        )
        first = show(gate, venue.qr(seats[0]))
        assert (first["result"], first["mode"]) == ("SUCCESS", "online"), first
        assert gate.status()["state"] == "online"

        revoke(venue)
        refused = show(gate, venue.qr(seats[1]))
        assert refused["result"] == DISABLED, refused
        assert "disabled" in refused["message"].lower()
        status = gate.status()
        # disabled, not offline: central answered, and its answer was "not you"
        assert (status["state"], status["disabled"]) == ("disabled", True), status
        assert status["disabled_since"] is not None
        assert venue.seat_status(seats[1]) == "SOLD"  # nobody was admitted

        # central unreachable: the manifest would admit this ticket, the disabled gate does not
        code = venue.qr(seats[2])
        later = venue.qr(seats[3])
        central.stop()
        offline = show(gate, code)
        assert (offline["result"], offline["mode"]) == (DISABLED, "offline"), offline
        assert gate.status()["state"] == "disabled"

        # restarted while central is still away: it remembers, and still refuses
        gate.stop()
        gate.start(*FAST)
        assert gate.status()["state"] == "disabled"
        again = show(gate, later)
        assert again["result"] == DISABLED, again
        # every refused scan is in the outbox, none waits for an upload central would refuse
        results = [s["result"] for s in gate.scans()]
        assert results.count(DISABLED) == 3 and results.count("SUCCESS") == 1
        assert gate.status()["backlog"] == 0
        # the lights said so too (the console indicator writes what the lamps would show)
        assert "[DISABLED] gate disabled" in (tmp_path / "gate.log").read_text()
    finally:
        gate.stop()
    central.start()
    for seat in seats[1:]:
        assert venue.seat_status(seat) == "SOLD"


def test_decider_refuses_from_the_manifest_once_revoked(tmp_path: Path) -> None:
    indicator = FakeIndicator()
    w = make_world(tmp_path, indicator)
    try:
        revocation = Revocation(w.outbox, "trg_token", indicator)
        w.decider.revocation = revocation
        admitted = w.scan(w.code(w.seat()))
        assert admitted.result == "SUCCESS"  # the manifest admits while the gate is enabled
        revocation.revoke("central said GATE_REVOKED")
        refused = w.scan(w.code(w.seat()))
        assert (refused.result, refused.admitted, refused.pending) == (DISABLED, False, False)
        assert indicator.calls[-1] == (DISABLED, False) and indicator.disabled
        assert [s.result for s in w.outbox.recent(10)] == [DISABLED, "SUCCESS"]
        # kept on disk for this token only: a gate given a new token starts enabled
        assert Revocation(w.outbox, "trg_token", FakeIndicator()).disabled
        assert not Revocation(w.outbox, "trg_other", FakeIndicator()).disabled
        revocation.restore()  # central accepted the token again
        assert not revocation.disabled and indicator.states == [True, False]
        assert w.scan(w.code(w.seat())).result == "SUCCESS"
    finally:
        w.outbox.close()


class RevokingCentral:
    """Central as a revoked gate meets it: every verify answers 401 GATE_REVOKED."""

    def __init__(self) -> None:
        self.calls = 0

    def verify(self, qr_payload: str, scan_id: str, scanned_at: float) -> dict[str, Any]:
        self.calls += 1
        raise CentralRevoked("POST /api/gate/verify: the operator revoked this gate")


def test_gate_revoked_answer_to_a_scan_is_not_offline(tmp_path: Path) -> None:
    indicator = FakeIndicator()
    w = make_world(tmp_path, indicator)
    try:
        central = RevokingCentral()
        w.decider.client = central  # type: ignore[assignment]
        w.decider.revocation = Revocation(w.outbox, "trg_token", indicator)
        w.decider.connectivity.record(True)
        seat = w.seat()  # the manifest would admit it
        refused = w.scan(w.code(seat))
        assert (refused.result, refused.mode) == (DISABLED, "online")
        assert w.decider.connectivity.online  # central answered: not offline
        assert w.decider.revocation.disabled and indicator.disabled
        # from now on the gate refuses by itself, without asking central again
        again = w.scan(w.code(w.seat()))
        assert (again.result, again.mode, central.calls) == (DISABLED, "offline", 1)
        assert seat not in w.decider.admitted
    finally:
        w.outbox.close()


def test_gpio_disabled_gate_blinks_red_and_never_pulses_the_relay(tmp_path: Path) -> None:
    green, red, buzzer, relay = 5, 6, 13, 19
    factory = MockFactory()
    indicator = GpioIndicator(
        green, red, buzzer, relay, hold_s=0.2, pulse_s=0.1, beep_s=0.03, pin_factory=factory
    )
    indicator.disabled_blink_s = 0.05
    try:
        indicator.set_disabled(True)
        # the standing signal: red blinking on its own, green dark
        wait_until(lambda: len(factory.pin(red).states) >= 6, timeout=5)
        assert factory.pin(green).state is False
        indicator.show("SUCCESS", admitted=True)  # even a stray "admitted" opens nothing
        time.sleep(0.5)
        assert [s.state for s in factory.pin(relay).states] == [False]
        assert [s.state for s in factory.pin(green).states] == [False]
        indicator.set_disabled(False)
        wait_until(lambda: factory.pin(red).state is False, timeout=5)
        count = len(factory.pin(red).states)
        time.sleep(0.3)
        assert len(factory.pin(red).states) == count  # no longer blinking
    finally:
        indicator.close()
        factory.reset()


def test_outbox_keeps_the_revocation_across_restarts(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gate.sqlite3")
    outbox.start()
    Revocation(outbox, "trg_a", FakeIndicator()).revoke("revoked")
    outbox.close()
    reopened = Outbox(tmp_path / "gate.sqlite3")
    reopened.start()
    try:
        indicator = FakeIndicator()
        assert Revocation(reopened, "trg_a", indicator).disabled
        assert indicator.states == [True]  # the lamps show it from the first second
    finally:
        reopened.close()


@needs_chromium
async def test_dashboard_page_shows_gate_disabled(
    browser: Any, venue: Venue, tmp_path: Path
) -> None:
    gate = GateProc(venue.central.url, venue.gate_token, tmp_path)
    gate.start(*FAST)
    try:
        wait_until(lambda: gate.status()["online"], timeout=30)
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        await page.goto(f"http://127.0.0.1:{gate.port}/")
        await page.fill("#pin", PIN)
        await page.click("#login-button")
        await page.wait_for_selector('#banner[data-online="online"]', timeout=10_000)
        assert await page.locator("#gate-disabled").is_hidden()
        revoke(venue)
        # the sync round (every second) hears GATE_REVOKED; the page is told at once
        await page.wait_for_selector("#gate-disabled", state="visible", timeout=10_000)
        assert "Gate disabled" in (await page.text_content("#gate-disabled") or "")
        assert await page.get_attribute("#banner", "data-online") == "disabled"
        assert "OFFLINE" not in (await page.text_content("#banner-state") or "")
        await page.screenshot(path=str(tmp_path / "gate-disabled.png"))
    finally:
        gate.stop()
