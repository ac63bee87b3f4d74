"""The `inv` fixture: a real inventory gRPC server over the `db_url` database, a real channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proto import inventory_pb2_grpc
from tests.inventory.support import FakeClock, Inventory, start_inventory


@pytest.fixture
async def inv(tmp_path: Path, db_url: str) -> AsyncIterator[Inventory]:
    clock = FakeClock()
    # A long sweep interval: the sweeper runs once at start, then stays out of the way of tests
    # that move the clock; the sweeper test starts its own server.
    server, channel, _ = await start_inventory(tmp_path, db_url, clock=clock, sweep_interval=3600)
    try:
        yield Inventory(server, inventory_pb2_grpc.InventoryStub(channel), clock)
    finally:
        await channel.close()
        await server.stop(None)
