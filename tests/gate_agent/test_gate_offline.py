"""Issue 5, items 2, 4 and 5 with real processes: central stopped and restarted, the gate agent
killed with SIGKILL, two gates admitting one ticket while both are offline."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.signing import KeyRing
from proto.ticket_token import sign_token
from tests.gate_agent.central_proc import Venue, drop_ticket, wait_until
from tests.gate_agent.gate_proc import GateProc

FAST = ("--sync-interval-s", "1")


def synced_after(gate: GateProc, instant: float) -> None:
    """The gate pulled a manifest that began after instant (so it knows what was bought)."""

    def fresh() -> bool:
        status = gate.status()
        if not status["online"] or status["last_sync_at"] is None:
            return False
        return bool(_unix(status["last_sync_at"]) > instant + 0.1)

    wait_until(fresh, timeout=15)


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def show(gate: GateProc, code: str) -> dict:
    """Shows one code to the gate's camera and answers the verdict it produced."""
    before = len(gate.scans())
    time.sleep(0.7)  # longer than --dedup-s: each showing is a fresh one
    assert gate.camera_dir is not None
    drop_ticket(gate.camera_dir, code)
    return gate.wait_scans(before + 1)[0]


def test_offline_admission_rejections_and_upload(venue: Venue, tmp_path: Path) -> None:
    central = venue.central
    seat, other = venue.seat_ids[:2]
    venue.buy(seat)
    venue.buy(other)
    gate = GateProc(central.url, venue.gate_token, tmp_path)
    gate.start(*FAST)
    try:
        bought = time.time()
        synced_after(gate, bought)
        code = venue.qr(seat)
        ring = KeyRing.load_or_create(central.data_dir)
        expired = ring.sign(other, 0, time.time() - 120)
        forged = sign_token(
            other, 0, int(time.time()), ring.current_kid, Ed25519PrivateKey.generate()
        )
        central.stop()

        first = show(gate, code)
        assert (first["result"], first["mode"]) == ("SUCCESS", "offline"), first
        again = show(gate, code)
        assert (again["result"], again["mode"]) == ("DUPLICATE", "offline"), again
        late = show(gate, expired)
        assert (late["result"], late["local"]) == ("EXPIRED", True), late
        fake = show(gate, forged)
        assert (fake["result"], fake["local"]) == ("INVALID", True), fake
        assert gate.status()["online"] is False
        assert gate.status()["backlog"] == 4

        central.start()
        restarted = time.monotonic()
        wait_until(lambda: gate.status()["backlog"] == 0, timeout=10)
        assert time.monotonic() - restarted < 10
        assert venue.seat_status(seat) == "CHECKED_IN"
        assert venue.seat_status(other) == "SOLD"  # the rejected codes admitted nobody
        outcomes = {s["scan_id"]: s["outcome"] for s in gate.scans()}
        assert outcomes[first["scan_id"]] == "APPLIED"
        # central recorded every scan the gate decided alone; only the admission applied
        for rejected in (again, late, fake):
            assert outcomes[rejected["scan_id"]] == "REJECTED"
        board = venue.dashboard()
        offline = [e for e in board["recent_entries"] if e["mode"] == "offline"]
        assert [(e["result"], e["seat_id"]) for e in offline if e["result"] == "SUCCESS"] == [
            ("SUCCESS", seat)
        ], offline
    finally:
        gate.stop()


def test_sigkill_after_offline_admissions_loses_nothing(venue: Venue, tmp_path: Path) -> None:
    central = venue.central
    seats = venue.seat_ids[:3]
    for seat in seats:
        venue.buy(seat)
    codes = [venue.qr(seat) for seat in seats]
    gate = GateProc(central.url, venue.gate_token, tmp_path)
    gate.start(*FAST)
    synced_after(gate, time.time())
    central.stop()
    admitted = [show(gate, code) for code in codes]
    assert [a["result"] for a in admitted] == ["SUCCESS"] * 3
    assert gate.status()["backlog"] == 3
    # killed right after deciding, before any upload could happen (central is down)
    gate.kill()

    central.start()
    gate.start(*FAST)  # same data dir: the outbox on disk is all that survived
    try:
        wait_until(lambda: gate.status()["backlog"] == 0, timeout=15)
        scans = gate.scans()
        assert sorted(s["scan_id"] for s in scans) == sorted(a["scan_id"] for a in admitted)
        assert all(s["outcome"] == "APPLIED" for s in scans), scans
        for seat in seats:
            assert venue.seat_status(seat) == "CHECKED_IN"
        board = venue.dashboard()
        assert board["checked_in"] == 3
        entries = [e for e in board["recent_entries"] if e["gate_id"] == venue.gate_id]
        assert sorted(e["seat_id"] for e in entries) == sorted(seats), entries  # once each
        assert board["conflicts"]["count"] == 0
    finally:
        gate.stop()


def test_two_offline_gates_admit_one_ticket_one_applied_one_conflict(
    venue: Venue, tmp_path: Path
) -> None:
    central = venue.central
    seat = venue.seat_ids[0]
    venue.buy(seat)
    south = venue.add_gate("South")
    gates = [
        GateProc(central.url, venue.gate_token, tmp_path, name="north"),
        GateProc(central.url, south["device_token"], tmp_path, name="south"),
    ]
    for gate in gates:
        gate.start(*FAST)
    try:
        bought = time.time()
        for gate in gates:
            synced_after(gate, bought)
        code = venue.qr(seat)
        central.stop()
        verdicts = [show(gate, code) for gate in gates]
        assert [(v["result"], v["mode"]) for v in verdicts] == [("SUCCESS", "offline")] * 2
        central.start()
        for gate in gates:
            wait_until(lambda g=gate: g.status()["backlog"] == 0, timeout=15)
        outcomes = sorted(g.scans()[0]["outcome"] for g in gates)
        assert outcomes == ["APPLIED", "CONFLICT"]
        board = venue.dashboard()
        assert board["checked_in"] == 1
        (conflict,) = board["conflicts"]["items"]
        named = {conflict["gate_name"]} | {
            e["gate_name"] for e in board["recent_entries"] if e["result"] == "SUCCESS"
        }
        assert named == {"North", "South"}, board["recent_entries"]
    finally:
        for gate in gates:
            gate.stop()
