"""Issue 15: manual entry accepts what a person can read out — the short code under the QR —
checked by central (real central, real gate process); offline the gate asks for the QR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gate_agent.central_proc import Venue
from tests.gate_agent.gate_proc import GateProc
from tests.gate_agent.test_gate_offline import FAST, synced_after


def typed(gate: GateProc, code: str) -> dict[str, Any]:
    assert gate._http is not None
    answer = gate._http.post("/api/manual", json={"code": code})
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["data"])


def test_short_code_admits_once_online_and_asks_for_the_qr_offline(
    venue: Venue, tmp_path: Path
) -> None:
    central = venue.central
    seat, other = venue.seat_ids[:2]
    venue.buy(seat)
    venue.buy(other)
    gate = GateProc(central.url, venue.gate_token, tmp_path)
    gate.start(*FAST)
    try:
        synced_after(gate, 0)
        ticket = central.call("GET", f"/api/tickets/{seat}/qr", venue.buyer_token)
        short = ticket["short_code"]
        # as staff would type it from the screen: lower case, no dash
        first = typed(gate, short.replace("-", "").lower())
        assert (first["result"], first["mode"], first["local"]) == ("SUCCESS", "online", False)
        assert venue.seat_status(seat) == "CHECKED_IN"
        again = typed(gate, short)
        assert again["result"] == "DUPLICATE", again
        unknown = typed(gate, "ZZZZ-ZZZZ" if short != "ZZZZ-ZZZZ" else "YYYY-YYYY")
        assert unknown["result"] == "INVALID" and "short code" in unknown["message"], unknown

        other_short = central.call("GET", f"/api/tickets/{other}/qr", venue.buyer_token)[
            "short_code"
        ]
        central.stop()
        offline = typed(gate, other_short)
        assert (offline["result"], offline["mode"]) == ("INVALID", "offline"), offline
        assert "scan the QR" in offline["message"], offline
        central.start()
        assert venue.seat_status(other) == "SOLD"  # nobody was admitted on an unchecked code
    finally:
        gate.stop()
