"""The server around the store: credential, argument checks, logging, health/metrics, sweeper."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
import sqlalchemy as sa

from central.logs import JsonFormatter
from proto import inventory_pb2 as pb
from proto import inventory_pb2_grpc
from tests.inventory.support import TOKEN, Inventory, new_id, start_inventory


async def test_call_without_or_with_wrong_token_is_unauthenticated(inv: Inventory) -> None:
    _, (seat_id,) = await inv.seats(1)
    req = pb.ReserveSeatRequest(seat_id=seat_id, user_id=new_id(), hold_id=new_id(), ttl_seconds=60)
    for metadata in ((("correlation-id", "x"),), (("x-internal-token", TOKEN + "x"),), None):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await inv.stub.ReserveSeat(req, metadata=metadata, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await inv.seat(seat_id)).status == "AVAILABLE"  # nothing was reserved


BAD = "not-a-uuid"


@pytest.mark.parametrize(
    ("method", "make", "field"),
    [
        (
            "ReserveSeat",
            lambda s: pb.ReserveSeatRequest(
                seat_id=BAD, user_id=new_id(), hold_id=new_id(), ttl_seconds=60
            ),
            "seat_id",
        ),
        (
            "ReserveSeat",
            lambda s: pb.ReserveSeatRequest(
                seat_id=s, user_id=BAD, hold_id=new_id(), ttl_seconds=60
            ),
            "user_id",
        ),
        (
            "ReserveSeat",
            lambda s: pb.ReserveSeatRequest(
                seat_id=s, user_id=new_id(), hold_id="", ttl_seconds=60
            ),
            "hold_id",
        ),
        (
            "ReserveSeat",
            lambda s: pb.ReserveSeatRequest(
                seat_id=s, user_id=new_id(), hold_id=new_id(), ttl_seconds=0
            ),
            "ttl_seconds",
        ),
        (
            "ReserveSeat",
            lambda s: pb.ReserveSeatRequest(
                seat_id=s, user_id=new_id(), hold_id=new_id(), ttl_seconds=3601
            ),
            "ttl_seconds",
        ),
        (
            "ConfirmSeat",
            lambda s: pb.ConfirmSeatRequest(seat_id=s, user_id=new_id(), hold_id=BAD),
            "hold_id",
        ),
        ("ReleaseSeat", lambda s: pb.ReleaseSeatRequest(seat_id=s, hold_id=BAD), "hold_id"),
        (
            "UpdateOwner",
            lambda s: pb.UpdateOwnerRequest(
                seat_id=s, expected_owner_user_id=BAD, new_owner_user_id=new_id()
            ),
            "expected_owner_user_id",
        ),
        ("VerifyTicket", lambda s: pb.VerifyTicketRequest(seat_id=s + "x"), "seat_id"),
        (
            "MarkCheckedIn",
            lambda s: pb.MarkCheckedInRequest(
                seat_id=s, owner_epoch=0, gate_id=BAD, scan_id=new_id()
            ),
            "gate_id",
        ),
        (
            "MarkCheckedIn",
            lambda s: pb.MarkCheckedInRequest(seat_id=s, owner_epoch=0, scan_id=""),
            "scan_id",
        ),
        (
            "CreateSeats",
            lambda s: pb.CreateSeatsRequest(
                event_id=BAD, seats=[pb.NewSeat(row="A", number=1, category="C")]
            ),
            "event_id",
        ),
        (
            "CreateSeats",
            lambda s: pb.CreateSeatsRequest(
                event_id=new_id(), seats=[pb.NewSeat(row="A", number=0, category="C")]
            ),
            "seats.0.number",
        ),
        (
            "CreateSeats",
            lambda s: pb.CreateSeatsRequest(
                event_id=new_id(), seats=[pb.NewSeat(row="A", number=1, category="C")] * 2
            ),
            "seats.1",
        ),
        ("ListSeats", lambda s: pb.ListSeatsRequest(), "event_id"),
        (
            "ListSeats",
            lambda s: pb.ListSeatsRequest(event_id=new_id(), statuses=["GONE"]),
            "statuses",
        ),
        ("SeatCounts", lambda s: pb.SeatCountsRequest(event_ids=[new_id(), BAD]), "event_ids"),
        ("GetManifest", lambda s: pb.ManifestRequest(event_ids=[]), "event_ids"),
        ("GetManifest", lambda s: pb.ManifestRequest(event_ids=[new_id()], cursor=-1), "cursor"),
        (
            "WriteEntryLog",
            lambda s: pb.EntryLogEntry(seat_id=s, result="ADMITTED", mode="psychic"),
            "mode",
        ),
        (
            "WriteEntryLog",
            lambda s: pb.EntryLogEntry(seat_id=BAD, result="ADMITTED", mode="online"),
            "seat_id",
        ),
        ("ListEntryLogs", lambda s: pb.ListEntryLogsRequest(scan_id=BAD), "scan_id"),
    ],
)
async def test_malformed_fields_are_invalid_argument_and_change_nothing(
    inv: Inventory,
    method: str,
    make,
    field: str,  # type: ignore[no-untyped-def]
) -> None:
    event_id, (seat_id,) = await inv.seats(1)
    before = await inv.seat(seat_id)
    err = await inv.error(method, make(seat_id))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details() or "").startswith(f"VALIDATION_ERROR: {field}:")
    assert await inv.seat(seat_id) == before
    logs = await inv.call("ListEntryLogs", pb.ListEntryLogsRequest(event_id=event_id))
    assert list(logs.entries) == []


async def test_correlation_id_from_metadata_is_on_the_rpc_log_line(
    inv: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    _, (seat_id,) = await inv.seats(1)
    caplog.set_level(logging.INFO)
    caplog.clear()
    await inv.call("VerifyTicket", pb.VerifyTicketRequest(seat_id=seat_id), cid="cid-ok-4711")
    with pytest.raises(grpc.aio.AioRpcError):
        await inv.call("VerifyTicket", pb.VerifyTicketRequest(seat_id=new_id()), cid="cid-nf-4712")

    lines = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "central.inventory.interceptor"
    ]
    by_cid = {line["correlation_id"]: line for line in lines}
    assert by_cid["cid-ok-4711"]["method"] == "VerifyTicket"
    assert by_cid["cid-ok-4711"]["code"] == "OK"
    assert by_cid["cid-nf-4712"]["code"] == "NOT_FOUND"
    assert all(isinstance(line["ms"], float | int) for line in lines)


async def test_store_log_lines_carry_the_callers_correlation_id(inv: Inventory) -> None:
    """Formatted when emitted, as in production (setup_logging's JSON handler on stderr)."""
    _, (seat_id,) = await inv.seats(1)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("central.inventory")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    hold = new_id()
    try:
        await inv.call(
            "ReserveSeat",
            pb.ReserveSeatRequest(seat_id=seat_id, user_id=new_id(), hold_id=hold, ttl_seconds=5),
            cid="cid-store-99",
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    store_lines = [line for line in lines if line["logger"] == "central.inventory.store"]
    assert [line["correlation_id"] for line in store_lines if hold in line["msg"]] == [
        "cid-store-99"
    ]


async def test_health_and_metrics_over_http(inv: Inventory) -> None:
    _, (seat_id,) = await inv.seats(1)
    await inv.seat(seat_id)
    with pytest.raises(grpc.aio.AioRpcError):
        await inv.call("VerifyTicket", pb.VerifyTicketRequest(seat_id=new_id()))
    port = await inv.server.start_http("127.0.0.1", 0)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/health") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["checks"] == {"database": "ok"} and body["service"] == "inventory"
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    assert 'inventory_rpc_total{code="OK",method="VerifyTicket"} 1.0' in text
    assert 'inventory_rpc_total{code="NOT_FOUND",method="VerifyTicket"} 1.0' in text
    assert 'inventory_rpc_total{code="OK",method="CreateSeats"} 1.0' in text


async def test_sweeper_releases_an_expired_hold_and_reports_it(tmp_path: Path, db_url: str) -> None:
    released: asyncio.Queue[list[tuple[str, str]]] = asyncio.Queue()

    async def on_released(pairs: list[tuple[str, str]]) -> None:
        await released.put(pairs)

    server, channel, _ = await start_inventory(
        tmp_path, db_url, clock=None, sweep_interval=0.2, on_released=on_released
    )
    try:
        inv = Inventory(server, inventory_pb2_grpc.InventoryStub(channel), None)
        _, (seat_id, other_seat) = await inv.seats(2)
        hold = new_id()
        await inv.call(
            "ReserveSeat",
            pb.ReserveSeatRequest(seat_id=seat_id, user_id=new_id(), hold_id=hold, ttl_seconds=1),
        )
        await inv.call(
            "ReserveSeat",
            pb.ReserveSeatRequest(
                seat_id=other_seat, user_id=new_id(), hold_id=new_id(), ttl_seconds=600
            ),
        )
        # within ttl + 1 s
        pairs = await asyncio.wait_for(released.get(), timeout=2.0)
        assert pairs == [(seat_id, hold)]
        seat = await inv.seat(seat_id)
        assert (seat.status, seat.hold_id) == ("AVAILABLE", "")
        assert (await inv.seat(other_seat)).status == "HELD"  # a live hold stays
    finally:
        await channel.close()
        await server.stop(None)


async def test_an_unexpected_failure_is_internal_and_logged(
    inv: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    # A real database failure: the entry_logs table is gone under the running server.
    assert inv.server.engine is not None
    async with inv.server.engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE entry_logs"))
    caplog.set_level(logging.INFO)
    err = await inv.error("ListEntryLogs", pb.ListEntryLogsRequest(event_id=new_id()))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "INTERNAL_ERROR: internal error"  # no database text leaks out
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    _, (seat_id,) = await inv.seats(1)  # the server keeps serving
    assert (await inv.seat(seat_id)).status == "AVAILABLE"
