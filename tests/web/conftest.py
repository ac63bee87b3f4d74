"""Fixtures of the browser tests: one real central (`python -m central serve`, file OTP backend)
per test module, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gate_agent.central_proc import Central


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    root: Path = tmp_path_factory.mktemp("web-central")
    c = Central(root / "central")
    c.start()
    yield c
    c.stop()
