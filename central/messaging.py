"""Seat-hold expiry over RabbitMQ (ARCHITECTURE §5.2).

seat.hold.exchange ─► seat.hold.<ttl>s (x-message-ttl, dead-letters to) ─► seat.release.exchange
─► seat.release.queue ─► the release consumer. One hold queue per TTL value, named after it.
Quorum queues with at-least-once dead-lettering, publisher confirms, a parking queue for messages
the consumer keeps failing on. `prefix` lets tests (and several deployments on one broker) keep
their own names.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from central.errors import ApiError

log = logging.getLogger(__name__)

ReleaseHandler = Callable[[dict[str, Any]], Awaitable[None]]


class HoldQueue:
    def __init__(self, amqp_url: str, ttl_seconds: int, *, prefix: str = "") -> None:
        self.amqp_url = amqp_url
        self.ttl = ttl_seconds
        self.prefix = prefix
        self.hold_exchange_name = f"{prefix}seat.hold.exchange"
        self.release_exchange_name = f"{prefix}seat.release.exchange"
        self.hold_queue_name = f"{prefix}seat.hold.{ttl_seconds}s"
        self.release_queue_name = f"{prefix}seat.release.queue"
        self.parking_queue_name = f"{prefix}seat.release.parking"
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: aio_pika.abc.AbstractChannel | None = None
        self._hold_exchange: aio_pika.abc.AbstractExchange | None = None
        self._consumer_tag: str | None = None
        self._consume_channel: aio_pika.abc.AbstractChannel | None = None

    async def start(self) -> None:
        """Connect and declare the topology (idempotent: every process declares it at start)."""
        # aio_pika waits 5 s between reconnect attempts by default: every reserve in that
        # window fails after the broker is back (measured by the chaos run); 1 s is plenty.
        self._connection = await aio_pika.connect_robust(
            self.amqp_url, timeout=10, reconnect_interval=1
        )
        channel = await self._connection.channel(publisher_confirms=True)
        self._publish_channel = channel
        self._hold_exchange = await channel.declare_exchange(
            self.hold_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        release_exchange = await channel.declare_exchange(
            self.release_exchange_name, aio_pika.ExchangeType.FANOUT, durable=True
        )
        hold_queue = await channel.declare_queue(
            self.hold_queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": self.ttl * 1000,
                "x-dead-letter-exchange": self.release_exchange_name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        await hold_queue.bind(self._hold_exchange, routing_key=self.hold_queue_name)
        await channel.declare_queue(
            self.parking_queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        release_queue = await channel.declare_queue(
            self.release_queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # After repeated failures a message parks instead of looping forever.
                "x-delivery-limit": 5,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.parking_queue_name,
            },
        )
        await release_queue.bind(release_exchange)

    async def publish_hold(self, message: dict[str, Any]) -> None:
        """Publish one hold; returns once the broker confirmed it (raises otherwise)."""
        try:
            if self._hold_exchange is None:
                await self.start()
            assert self._hold_exchange is not None
            await self._hold_exchange.publish(
                aio_pika.Message(
                    json.dumps(message).encode(),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                    message_id=f"{message.get('saga_id')}:{message.get('hold_id')}",
                ),
                routing_key=self.hold_queue_name,
                timeout=5,
            )
        except (
            aiormq.exceptions.AMQPError,
            aiormq.exceptions.ChannelInvalidStateError,  # the channel closed with the broker
            ConnectionError,
            TimeoutError,
        ) as exc:
            # a broker restart is "try again" for the reserve that needed it, not a 500
            raise ApiError("SERVICE_UNAVAILABLE", f"message broker unavailable ({exc})") from None

    async def consume(self, handler: ReleaseHandler) -> None:
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=50)
        self._consume_channel = channel
        queue = await channel.get_queue(self.release_queue_name, ensure=False)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                payload = json.loads(message.body)
            except ValueError:
                log.error("unreadable release message parked")
                await message.reject(requeue=False)
                return
            try:
                await handler(payload)
            except Exception:
                log.exception("release handler failed; redelivering")
                await asyncio.sleep(0.2)
                await message.nack(requeue=True)
                return
            await message.ack()

        self._consumer_tag = await queue.consume(on_message)

    async def delete_topology(self) -> None:
        """For tests: remove this prefix's queues and exchanges."""
        assert self._connection is not None
        channel = await self._connection.channel()
        for name in (self.hold_queue_name, self.release_queue_name, self.parking_queue_name):
            await channel.queue_delete(name)
        for name in (self.hold_exchange_name, self.release_exchange_name):
            await channel.exchange_delete(name)
        await channel.close()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
