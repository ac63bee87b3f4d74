"""Fixtures the gate agent's end-to-end tests share: a real central subprocess and a venue on it
(an event in a hall, a registered gate, a buyer with credits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gate_agent.central_proc import Central, Venue, make_venue


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    c = Central(tmp_path / "central")
    c.start()
    yield c
    c.stop()


@pytest.fixture
def venue(central: Central) -> Venue:
    return make_venue(central)
