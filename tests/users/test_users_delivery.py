"""OTP delivery backends against real receivers: a local aiohttp server for the webhook
(including a gateway that fails first), the file backend's JSON lines, the log backend."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from central.config import Settings
from central.users.app import services_key
from central.users.delivery import FileDelivery, LogDelivery, WebhookDelivery, make_delivery
from tests.users.conftest import AppFactory, call, read_codes, register

MESSAGE = {
    "user_id": "u1",
    "email": "ann@example.com",
    "phone": "+6591234567",
    "purpose": "purchase",
    "reference_id": "r1",
    "code": "123456",
    "sent_at": "2026-01-01T00:00:00Z",
}


class Gateway:
    """A real HTTP receiver that fails the first `failures` POSTs with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.attempts = 0
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            return web.Response(status=500)
        self.received.append(await request.json())
        return web.json_response({"ok": True})


async def start_gateway(aiohttp_server: Any, gateway: Gateway) -> str:
    app = web.Application()
    app.router.add_post("/otp", gateway.handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/otp"))


async def test_webhook_posts_the_json(aiohttp_server: Any) -> None:
    gateway = Gateway()
    delivery = WebhookDelivery(await start_gateway(aiohttp_server, gateway), base_delay=0.01)
    await delivery.send(MESSAGE)
    await delivery.close()
    assert gateway.received == [MESSAGE]


async def test_webhook_retries_after_a_failure(aiohttp_server: Any) -> None:
    gateway = Gateway(failures=2)
    delivery = WebhookDelivery(await start_gateway(aiohttp_server, gateway), base_delay=0.01)
    await delivery.send(MESSAGE)
    await delivery.drain()
    await delivery.close()
    assert gateway.attempts == 3
    assert gateway.received == [MESSAGE]


async def test_webhook_gives_up_quietly(aiohttp_server: Any, caplog: Any) -> None:
    gateway = Gateway(failures=100)
    delivery = WebhookDelivery(await start_gateway(aiohttp_server, gateway), base_delay=0.01)
    with caplog.at_level(logging.INFO):
        await delivery.send(MESSAGE)  # never raises into the caller
        await delivery.drain()
    await delivery.close()
    assert gateway.attempts == 5 and gateway.received == []
    assert "gave up" in caplog.text
    assert MESSAGE["code"] not in caplog.text  # only the log backend may show a code


async def test_register_over_http_delivers_by_webhook(
    aiohttp_server: Any, make_client: AppFactory, settings: Settings
) -> None:
    gateway = Gateway(failures=1)
    url = await start_gateway(aiohttp_server, gateway)
    client = await make_client(
        settings=dataclasses.replace(settings, otp_delivery=f"webhook:{url}"),
        webhook_base_delay=0.01,
    )
    user = await register(client, "hook@example.com", phone="+6591234567")
    await client.app[services_key].delivery.drain()
    assert len(gateway.received) == 1
    sent = gateway.received[0]
    assert sent["user_id"] == user["user_id"] and sent["purpose"] == "registration"
    status, body = await call(
        client,
        "POST",
        "/auth/verify-registration",
        {"user_id": user["user_id"], "otp_code": sent["code"]},
    )
    assert status == 200, body


async def test_file_backend_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "codes.jsonl"
    delivery = make_delivery(f"file:{path}")
    assert isinstance(delivery, FileDelivery)
    await delivery.send(MESSAGE)
    await delivery.send({**MESSAGE, "code": "654321"})
    lines = read_codes(path)
    assert [line["code"] for line in lines] == ["123456", "654321"]
    assert set(lines[0]) == {
        "user_id",
        "email",
        "phone",
        "purpose",
        "reference_id",
        "code",
        "sent_at",
    }


async def test_log_backend_logs_the_code(caplog: Any) -> None:
    delivery = make_delivery("log")
    assert isinstance(delivery, LogDelivery)
    with caplog.at_level(logging.INFO):
        await delivery.send(MESSAGE)
    assert "123456" in caplog.text


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="otp-delivery"):
        make_delivery("carrier-pigeon")
