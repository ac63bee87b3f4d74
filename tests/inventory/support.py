"""Helpers for the inventory tests: a real server on 127.0.0.1:0 over a real database, a real
channel, and a clock the tests move."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from central.config import Settings
from central.inventory.server import InventoryServer
from proto import inventory_pb2 as pb
from proto import inventory_pb2_grpc

TOKEN = "test-internal-token"


class FakeClock:
    """Milliseconds that move only when a test says so: hold expiry without sleeping."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Inventory:
    server: InventoryServer
    stub: inventory_pb2_grpc.InventoryStub
    clock: FakeClock | None

    @staticmethod
    def md(cid: str = "test-cid") -> tuple[tuple[str, str], ...]:
        return (("x-internal-token", TOKEN), ("correlation-id", cid))

    async def call(self, method: str, request: Any, cid: str = "test-cid") -> Any:
        return await getattr(self.stub, method)(request, metadata=self.md(cid), timeout=30)

    async def error(self, method: str, request: Any) -> grpc.aio.AioRpcError:
        """The status a call fails with (the test fails if it succeeds)."""
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await self.call(method, request)
        return info.value

    async def seats(self, n: int, event_id: str | None = None) -> tuple[str, list[str]]:
        event_id = event_id or new_id()
        resp = await self.call(
            "CreateSeats",
            pb.CreateSeatsRequest(
                event_id=event_id,
                seats=[pb.NewSeat(row="A", number=i + 1, category="CAT1") for i in range(n)],
            ),
        )
        return event_id, list(resp.seat_ids)

    async def seat(self, seat_id: str) -> pb.Seat:
        return await self.call("VerifyTicket", pb.VerifyTicketRequest(seat_id=seat_id))

    async def sold_seat(self, user_id: str | None = None) -> tuple[str, str]:
        """A seat sold to user_id (new when None): (seat_id, user_id)."""
        user_id = user_id or new_id()
        _, (seat_id,) = await self.seats(1)
        hold = new_id()
        await self.call(
            "ReserveSeat",
            pb.ReserveSeatRequest(seat_id=seat_id, user_id=user_id, hold_id=hold, ttl_seconds=60),
        )
        await self.call(
            "ConfirmSeat", pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user_id, hold_id=hold)
        )
        return seat_id, user_id


async def start_inventory(
    tmp_path: Path, db_url: str, *, clock: FakeClock | None, sweep_interval: float, **kw: Any
) -> tuple[InventoryServer, grpc.aio.Channel, int]:
    settings = Settings(
        data_dir=tmp_path,
        service_database_urls={"inventory": db_url},
        internal_token=TOKEN,
        sweep_interval=sweep_interval,
    )
    server = (
        InventoryServer(settings, clock=clock, **kw) if clock else InventoryServer(settings, **kw)
    )
    port = await server.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return server, channel, port
