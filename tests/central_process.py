"""`python -m central …` as a real subprocess, for tests that kill and restart it, and what the
tests read of it (the public API as an outside client, a service's PostgreSQL database)."""

from __future__ import annotations

from typing import Any

import httpx

# The processes themselves live in the package, shared with the benches and the demo.
from central.local_processes import (  # noqa: F401 - re-exported for the tests
    ROOT,
    CentralProcess,
    ScaledOutCentral,
    free_port,
    run_admin,
)


def api(
    url: str, method: str, path: str, token: str | None = None, body: object = None
) -> httpx.Response:
    """One public API call, as a client outside the process would make it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url + path, json=body, headers=headers, timeout=30)


async def query(prefix: str, service: str, sql: str) -> list[dict[str, Any]]:
    """Read a service's PostgreSQL database directly (what the test checks, not how it acts)."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{prefix}_{service}")
    try:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(sa.text(sql))]
    finally:
        await engine.dispose()


async def sagas_settled(prefix: str) -> bool:
    """No saga is left running or compensating."""
    rows = await query(prefix, "orchestrator", "SELECT status FROM sagas")
    return all(r["status"] in ("COMPLETED", "FAILED") for r in rows)
