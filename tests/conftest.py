"""Shared fixtures. Real PostgreSQL/RabbitMQ/Chromium tests run when their URL/path is given:
TR_TEST_POSTGRES_URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test),
TR_TEST_AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672/), TR_TEST_CHROMIUM (e.g. /usr/bin/chromium);
otherwise they skip with the reason. Each test gets its own database, removed afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from central.db import drop_postgres_database

POSTGRES_URL = os.environ.get("TR_TEST_POSTGRES_URL")
AMQP_URL = os.environ.get("TR_TEST_AMQP_URL")
CHROMIUM = os.environ.get("TR_TEST_CHROMIUM")

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="TR_TEST_POSTGRES_URL not set")
needs_rabbitmq = pytest.mark.skipif(not AMQP_URL, reason="TR_TEST_AMQP_URL not set")
needs_chromium = pytest.mark.skipif(not CHROMIUM, reason="TR_TEST_CHROMIUM not set")


# Debian's Chromium as root, headless, with nothing that phones home (the machine's network is
# closed; background services would fail and retry)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium through Playwright, for the tests marked needs_chromium."""
    from playwright.async_api import async_playwright

    assert CHROMIUM
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def fresh_postgres_prefix() -> str:
    """A database-name prefix no other run uses; services append `_<service>`."""
    assert POSTGRES_URL
    base = POSTGRES_URL.rsplit("/", 1)[0]
    return f"{base}/trt_{uuid.uuid4().hex[:12]}"


async def drop_prefix_databases(prefix_url: str, services: tuple[str, ...]) -> None:
    for service in services:
        await drop_postgres_database(f"{prefix_url}_{service}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """One fresh database URL per test, on SQLite and (when given) on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    url = f"{fresh_postgres_prefix()}_x"
    try:
        yield url
    finally:
        await drop_postgres_database(url)


def _libzbar_missing() -> str | None:
    try:
        from pyzbar import pyzbar  # noqa: F401
    except ImportError as exc:
        return f"libzbar0 (a system package) is missing: {exc}; apt-get install libzbar0"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of the pyzbar decoder need the system's libzbar0 (CI installs it): without it they
    skip with the reason, like the PostgreSQL, RabbitMQ and Chromium tests."""
    reason = _libzbar_missing()
    if reason is None:
        return
    for item in items:
        if "pyzbar" in item.name and "without_libzbar" not in item.name:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """CI sets TR_FAIL_ON_SKIP=1: a skipped test there is a failure, not a pass."""
    if os.environ.get("TR_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(
            f"TR_FAIL_ON_SKIP: {skipped} test(s) skipped; failing the run", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ----- the abuse suite's table (tests/abuse/): every attempt is a row, written by whichever process
# ran it (xdist workers too) and gathered here into one table, printed and kept as a file -----
ABUSE_ROWS_DIR = Path(__file__).resolve().parent.parent / "test-artifacts" / "abuse-rows"
ABUSE_TABLE = ABUSE_ROWS_DIR.parent / "abuse-table.md"


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller clears the rows once
    if ABUSE_ROWS_DIR.is_dir():
        for old in ABUSE_ROWS_DIR.glob("*.jsonl"):
            old.unlink()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from tests.abuse.table import render_table

    table = render_table(ABUSE_ROWS_DIR)
    if table is None:
        return
    ABUSE_TABLE.write_text(table)
    terminalreporter.section("abuse attempts and outcomes")
    for line in table.splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {ABUSE_TABLE})")
