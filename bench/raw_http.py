"""A lean HTTP/1.1 client for the load generators: JSON POSTs over a pool of keep-alive
connections on plain asyncio streams, the request's bytes built by hand, the answer read by its
Content-Length.

Why: the goals are measured with the load generator on the same two cores as the server, so what
the generator spends is taken from the server. aiohttp's client (cookie jar, tracing hooks,
redirect handling, its own timeouts, a response object per request) cost about 0.4 ms of CPU per
scan, 14 % of what a verdict costs the whole machine on PostgreSQL. A gate is a separate device;
this comes closer to what the server would face from many of them. It speaks only the HTTP the
benches need (no TLS, no chunked answers, no redirects) and says so when it meets anything else.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


class RawHttpError(Exception):
    """The connection failed or the answer is not HTTP this client reads."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()


class RawHttpPool:
    """At most ``size`` connections to one host; a request waits for a free one."""

    @classmethod
    def for_url(cls, url: str, size: int, timeout: float = 30.0) -> RawHttpPool:
        """A pool to the server at ``http://host:port`` (a bench's central)."""
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        return cls(host, int(port), size, timeout)

    def __init__(self, host: str, port: int, size: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._free: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    async def post_json(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, the answer's JSON); raises RawHttpError or TimeoutError."""
        data = orjson.dumps(body)
        head = [
            f"POST {path} HTTP/1.1\r\n".encode(),
            self._host_header,
            b"Content-Type: application/json\r\n",
            b"Content-Length: %d\r\n" % len(data),
        ]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode())
        head.append(b"\r\n")
        request = b"".join(head) + data
        async with self._slots:
            conn = self._free.pop() if self._free else await self._open()
            try:
                async with asyncio.timeout(self.timeout):
                    status, answer, keep = await self._exchange(conn, request)
            except BaseException:
                conn.close()  # a half-read answer leaves the connection unusable
                raise
            if keep:
                self._free.append(conn)
            else:
                conn.close()
        return status, orjson.loads(answer) if answer else None

    async def _open(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise RawHttpError(f"connect: {exc}") from exc
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(conn: _Connection, request: bytes) -> tuple[int, bytes, bool]:
        try:
            conn.writer.write(request)
            status_line = await conn.reader.readline()
            if not status_line:
                raise RawHttpError("the server closed the connection")
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise RawHttpError(f"not an HTTP answer: {status_line[:80]!r}")
            status = int(parts[1])
            length, keep = 0, parts[0] == b"HTTP/1.1"
            while True:
                line = await conn.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise RawHttpError("a chunked answer: this client reads Content-Length only")
                elif name == b"connection":
                    keep = value.strip().lower() == b"keep-alive" or (
                        keep and value.strip().lower() != b"close"
                    )
            answer = await conn.reader.readexactly(length) if length else b""
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise RawHttpError(f"{type(exc).__name__}: {exc}") from exc
        return status, answer, keep

    async def close(self) -> None:
        while self._free:
            self._free.pop().close()
