"""Fixtures of the browser tests: one real central (`python -m central serve`, file OTP backend)
per test module, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM

from tests.gate_agent.central_proc import Central
from tests.web.support import CHROMIUM_ARGS


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    root: Path = tmp_path_factory.mktemp("web-central")
    c = Central(root / "central")
    c.start()
    yield c
    c.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    assert CHROMIUM
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()
