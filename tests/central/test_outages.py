"""A database or broker that cannot be reached is "unavailable, try again" (503 SERVICE_UNAVAILABLE,
gRPC UNAVAILABLE), never a 500: what the chaos run found when PostgreSQL restarted and RabbitMQ
stopped under load. A bug stays a 500."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from aiohttp import web
from conftest import AMQP_URL, needs_rabbitmq
from sqlalchemy.ext.asyncio import create_async_engine

from central.db import is_outage
from central.errors import ApiError
from central.messaging import HoldQueue
from tests.central_process import free_port


async def test_what_counts_as_an_outage(tmp_path: Any) -> None:
    assert is_outage(ConnectionRefusedError(111, "refused"))
    assert is_outage(asyncpg.exceptions.CannotConnectNowError("the database system is starting"))
    assert is_outage(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    wrapped = RuntimeError("step failed")
    wrapped.__cause__ = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    assert is_outage(wrapped)
    # a real refused connection as SQLAlchemy raises it
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(Exception) as caught:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        assert is_outage(caught.value)
    finally:
        await engine.dispose()
    assert not is_outage(ValueError("a bug"))
    assert not is_outage(KeyError("missing"))


async def test_a_handler_meeting_an_outage_answers_503_and_a_bug_500(aiohttp_client: Any) -> None:
    from central.web import make_app

    app = make_app("test", internal_token=None)

    async def down(request: web.Request) -> web.Response:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    async def bug(request: web.Request) -> web.Response:
        raise ValueError("a bug")

    app.router.add_get("/down", down)
    app.router.add_get("/bug", bug)
    client = await aiohttp_client(app)
    resp = await client.get("/down")
    assert resp.status == 503
    assert (await resp.json())["error_code"] == "SERVICE_UNAVAILABLE"
    resp = await client.get("/bug")
    assert resp.status == 500
    assert (await resp.json())["error_code"] == "INTERNAL_ERROR"


async def test_publishing_a_hold_without_a_broker_is_service_unavailable() -> None:
    holds = HoldQueue(f"amqp://guest:guest@127.0.0.1:{free_port()}/", 30)
    with pytest.raises(ApiError) as caught:
        await holds.publish_hold({"saga_id": "s", "hold_id": "h"})
    assert caught.value.code == "SERVICE_UNAVAILABLE"


@needs_rabbitmq
async def test_publishing_a_hold_on_a_channel_the_broker_closed_is_service_unavailable() -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    holds = HoldQueue(AMQP_URL, 30, prefix=prefix)
    await holds.start()
    try:
        assert holds._publish_channel is not None
        await holds._publish_channel.close()  # as a broker stop leaves it until the reconnect
        with pytest.raises(ApiError) as caught:
            await holds.publish_hold({"saga_id": "s", "hold_id": "h"})
        assert caught.value.code == "SERVICE_UNAVAILABLE"
    finally:
        await holds.close()
        cleanup = HoldQueue(AMQP_URL, 30, prefix=prefix)
        await cleanup.start()
        await cleanup.delete_topology()
        await cleanup.close()
