"""OTP delivery backends, chosen by `--otp-delivery`: `log` (development: the code is logged),
`file:PATH` (one JSON line per code, flushed and fsynced) and `webhook:URL` (POSTed in the
background with retries; a failure is logged and never reaches the request that sent the code)."""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = 5


class OtpDelivery(abc.ABC):
    name = "base"

    @abc.abstractmethod
    async def send(self, message: dict[str, Any]) -> None:
        """Hand one code to its recipient (or start doing so)."""

    async def drain(self) -> None:
        """Wait for deliveries still in flight (tests, and a clean shutdown). The synchronous
        backends have none: their send() returns once the code is delivered."""
        return None

    async def close(self) -> None:
        await self.drain()


class LogDelivery(OtpDelivery):
    """The development backend: the code goes to the log, where the developer reads it."""

    name = "log"

    async def send(self, message: dict[str, Any]) -> None:
        log.warning(
            "OTP for %s (%s %s): %s",
            message["email"],
            message["purpose"],
            message["reference_id"],
            message["code"],
        )


class FileDelivery(OtpDelivery):
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def send(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        async with self._lock:  # one writer at a time, so lines never interleave
            await asyncio.to_thread(self._append, line)
        log.info("OTP written to file for %s", message["user_id"])


class WebhookDelivery(OtpDelivery):
    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        attempts: int = WEBHOOK_ATTEMPTS,
        base_delay: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.base_delay = base_delay
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def send(self, message: dict[str, Any]) -> None:
        # In the background: an SMS gateway's hiccup must not fail or slow the request.
        task = asyncio.create_task(self._deliver(dict(message)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: dict[str, Any]) -> None:
        who = message.get("user_id")
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._client().post(self.url, json=message) as resp:
                    if resp.status < 300:
                        log.info("OTP delivered by webhook for %s (attempt %d)", who, attempt)
                        return
                    reason = f"HTTP {resp.status}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a background delivery reports; it never raises
                reason = type(exc).__name__
            log.warning(
                "OTP webhook attempt %d/%d for %s failed: %s", attempt, self.attempts, who, reason
            )
            if attempt < self.attempts:
                await asyncio.sleep(self.base_delay * 2 ** (attempt - 1))
        log.error("OTP webhook gave up for %s after %d attempts", who, self.attempts)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        # A short grace for codes in flight, then stop: shutdown must not hang on a gateway.
        try:
            await asyncio.wait_for(self.drain(), timeout=2.0)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def make_delivery(spec: str, *, webhook_base_delay: float = 0.5) -> OtpDelivery:
    if spec == "log":
        return LogDelivery()
    if spec.startswith("file:") and len(spec) > len("file:"):
        return FileDelivery(Path(spec[len("file:") :]))
    if spec.startswith("webhook:"):
        return WebhookDelivery(spec[len("webhook:") :], base_delay=webhook_base_delay)
    raise ValueError(f"--otp-delivery: must be log, file:PATH or webhook:URL (got {spec!r})")
