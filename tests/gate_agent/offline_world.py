"""A gate that knows a hall without any central: a signing key ring, a manifest with a few seats,
an outbox on disk and a decider. For rules, indicator and pipeline tests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.signing import KeyRing
from gate_agent.clock import CentralClock
from gate_agent.decider import Decider
from gate_agent.outbox import Outbox
from gate_agent.sync import Connectivity
from gate_agent.verifier import Manifest
from hardware.indicators import Indicator

HALL = "HALL-A"


@dataclass
class World:
    ring: KeyRing
    manifest: Manifest
    outbox: Outbox
    decider: Decider
    event_id: str

    def seat(self, status: str = "SOLD", **extra: Any) -> str:
        seat_id = str(uuid.uuid4())
        row = {
            "seat_id": seat_id,
            "event_id": self.event_id,
            "status": status,
            "owner_epoch": 0,
            "hall_id": HALL,
            "row": "A",
            "number": len(self.manifest.seats) + 1,
        }
        self.manifest.apply({"seats": [{**row, **extra}]})
        return seat_id

    def code(self, seat_id: str, *, epoch: int = 0, age: float = 0.0) -> str:
        return self.ring.sign(seat_id, epoch, time.time() - age)

    def scan(self, text: str) -> Any:
        return self.decider.handle(text, time.time(), time.monotonic())


def make_world(
    tmp_path: Path, indicator: Indicator, *, doors: tuple[float, float] | None = None
) -> World:
    ring = KeyRing({1: Ed25519PrivateKey.generate()})
    event_id = str(uuid.uuid4())
    opens, closes = doors or (time.time() - 3600, time.time() + 3600)
    manifest = Manifest()
    manifest.apply(
        {
            "gate_id": "gate-1",
            "hall_id": HALL,
            "cursor": 1,
            "keys": ring.public_keys_json(),
            "events": [
                {"event_id": event_id, "name": "Show", "doors_open": opens, "doors_close": closes}
            ],
        }
    )
    outbox = Outbox(tmp_path / "gate.sqlite3")
    outbox.start()
    clock = CentralClock()
    clock.observe(time.time(), time.time(), time.time(), 0.0)  # central's time = ours
    decider = Decider(
        manifest=manifest,
        outbox=outbox,
        indicator=indicator,
        clock=clock,
        connectivity=Connectivity(),
        client=None,
    )
    return World(ring, manifest, outbox, decider, event_id)
