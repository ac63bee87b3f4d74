"""Issue 16's door disagreement: the gate's online call times out, it decides from a manifest older
than the sale and turns the holder away — while central's late verdict checked the ticket in. The
gate's upload of that scan (REJECTED) makes central undo that very check-in, so the door and
central agree and the ticket still admits at the next scan. No sleeping: the gate's "timeout" is a
transport that delivers the request to central and then drops the answer."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gate_agent.central_client import CentralClient
from gate_agent.clock import CentralClock
from gate_agent.decider import Decider
from gate_agent.outbox import Outbox
from gate_agent.sync import Connectivity, SyncWorker, upload_item
from gate_agent.verifier import Manifest
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import Venue


class LateAnswers(httpx.BaseTransport):
    """The real network, except that while `late` is set a verify reaches central and central
    answers, but the answer arrives after the gate stopped waiting (httpx.ReadTimeout)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.late = False
        self.delivered = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.late and request.url.path == "/api/gate/verify":
            response.read()  # central has decided and answered
            response.close()
            self.delivered += 1
            raise httpx.ReadTimeout("the answer came after the gate's deadline", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_scan_the_gate_turned_away_is_not_left_checked_in(venue: Venue, tmp_path: Path) -> None:
    central = venue.central
    seat = venue.seat_ids[0]
    network = LateAnswers()
    clock = CentralClock()
    client = CentralClient(central.url, venue.gate_token, clock, transport=network)
    outbox = Outbox(tmp_path / "gate.sqlite3")
    outbox.start()
    manifest, connectivity = Manifest(), Connectivity()
    sync = SyncWorker(client, outbox, manifest, connectivity)
    decider = Decider(
        manifest=manifest,
        outbox=outbox,
        indicator=FakeIndicator(),
        clock=clock,
        connectivity=connectivity,
        client=client,
    )
    try:
        sync.pull_manifest()  # before the sale: the seat is AVAILABLE in the gate's manifest
        assert manifest.seats[seat]["status"] == "AVAILABLE" and connectivity.online
        venue.buy(seat)
        code = venue.qr(seat)

        network.late = True
        turned_away = decider.handle(code, time.time(), time.monotonic())
        assert network.delivered == 1  # central did get the scan
        assert (turned_away.result, turned_away.mode) == ("UNPAID", "offline")
        assert not turned_away.admitted  # the door stayed shut

        network.late = False
        sync.upload_pending()
        (uploaded,) = [s for s in outbox.recent() if s.scan_id == turned_away.scan_id]
        assert (uploaded.pending, uploaded.outcome) == (False, "REJECTED")
        # central agrees with the door: nobody got in on that scan
        assert venue.seat_status(seat) == "SOLD"
        board = venue.dashboard()
        assert board["checked_in"] == 0
        assert [e["result"] for e in board["recent_entries"]] == ["UNPAID"]
        # and the holder, sent back, gets in at the next scan (not DUPLICATE)
        sync.pull_manifest()
        again = decider.handle(venue.qr(seat), time.time(), time.monotonic())
        assert (again.result, again.mode) == ("SUCCESS", "online")
        assert venue.seat_status(seat) == "CHECKED_IN"
        # the turned-away scan uploaded again (a lost answer) never undoes the new admission
        (repeat,) = client.checkins([upload_item(uploaded)])
        assert (repeat.outcome, repeat.result) == ("ALREADY_RECEIVED", "UNPAID")
        assert venue.seat_status(seat) == "CHECKED_IN"
        assert venue.dashboard()["checked_in"] == 1
    finally:
        client.close()
        outbox.close()
