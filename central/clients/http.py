"""The REST transport under the typed clients (users.py, orders.py, events.py): one aiohttp
session per service, a deadline and the correlation id on every call, and the service's error
envelope turned into its ApiError here, once."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from central import jsoncodec
from central.errors import ApiError
from central.logs import correlation_id
from central.web import CORRELATION_HEADER, INTERNAL_TOKEN_HEADER

log = logging.getLogger(__name__)


class ServiceClient:
    """Calls one service; answers its `data`, raises its ApiError, or SERVICE_UNAVAILABLE."""

    def __init__(self, name: str, base_url: str, internal_token: str, timeout: float) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._token = internal_token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=200, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={INTERNAL_TOKEN_HEADER: self._token},
                json_serialize=jsoncodec.dumps,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        data, _ = await self.call_with_meta(method, path, json=json, params=params, timeout=timeout)
        return data

    async def call_with_meta(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Like call(), also answering the envelope's other keys (e.g. pagination)."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        headers = {CORRELATION_HEADER: correlation_id.get()}
        budget = aiohttp.ClientTimeout(total=timeout or self.timeout)
        try:
            async with self._session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=budget,
            ) as resp:
                raw = await resp.read()
                body = jsoncodec.loads(raw) if raw else None
                status = resp.status
        except TimeoutError:
            log.warning("%s %s %s timed out", self.name, method, path)
            raise ApiError("SERVICE_UNAVAILABLE", f"{self.name} did not answer in time") from None
        except (aiohttp.ClientError, ValueError) as exc:
            log.warning("%s %s %s failed: %s", self.name, method, path, exc)
            raise ApiError("SERVICE_UNAVAILABLE", f"{self.name} is unavailable") from None
        if isinstance(body, dict) and body.get("success") is True:
            extra = {k: v for k, v in body.items() if k not in ("success", "data")}
            return body.get("data"), extra
        raise ApiError.from_body(status, body)

    async def page(
        self, path: str, params: dict[str, str], *, timeout: float | None = None
    ) -> tuple[list[Any], int, dict[str, Any] | None]:
        """A list and its pagination: (items, total, the service's pagination block)."""
        items, extra = await self.call_with_meta("GET", path, params=params, timeout=timeout)
        block = extra.get("pagination")
        total = int((block or {}).get("total", len(items)))
        return list(items), total, block

    async def health(self) -> None:
        """Raise unless the service's /health answers 200 (it answers outside the envelope)."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        try:
            async with self._session.get(
                self.base_url + "/health", timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RuntimeError(f"{self.name} unreachable: {type(exc).__name__}") from None
        if status != 200:
            raise RuntimeError(f"{self.name} unhealthy ({status})")
