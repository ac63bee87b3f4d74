"""bench/raw_http.py, the verification bench's lean client, against a real aiohttp server: the
answer's status and JSON come back, connections are kept and reused, a server's `Connection:
close` is obeyed, no more than the pool's size are open at once, and an answer it cannot read
(chunked) is an error, never a misread."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from bench.raw_http import RawHttpError, RawHttpPool


class Server:
    def __init__(self) -> None:
        self.peers: set[Any] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        self.release.set()
        self.two_in = asyncio.Event()

    async def echo(self, request: web.Request) -> web.Response:
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight >= 2:
            self.two_in.set()
        try:
            await self.release.wait()
            body = await request.json()
            answer = {"got": body, "auth": request.headers.get("Authorization")}
            status = int(request.query.get("status", "200"))
            headers = {"Connection": "close"} if "close" in request.query else {}
            return web.json_response(answer, status=status, headers=headers)
        finally:
            self.in_flight -= 1

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"a": 1}')
        await response.write_eof()
        return response


@pytest.fixture
async def served(aiohttp_server: Any) -> tuple[Server, RawHttpPool]:
    server = Server()
    app = web.Application()
    app.router.add_post("/echo", server.echo)
    app.router.add_post("/chunked", server.chunked)
    running = await aiohttp_server(app)
    pool = RawHttpPool("127.0.0.1", running.port, size=2, timeout=10)
    yield server, pool
    await pool.close()


async def test_answers_come_back_and_one_connection_is_kept(
    served: tuple[Server, RawHttpPool],
) -> None:
    server, pool = served
    for n in range(5):
        status, body = await pool.post_json("/echo", {"n": n}, {"Authorization": "Bearer g"})
        assert (status, body) == (200, {"got": {"n": n}, "auth": "Bearer g"})
    assert len(server.peers) == 1  # five requests, one kept-alive connection
    status, body = await pool.post_json("/echo?status=409", {"n": 9})
    assert (status, body["got"]) == (409, {"n": 9})


async def test_a_connection_the_server_closes_is_not_used_again(
    served: tuple[Server, RawHttpPool],
) -> None:
    server, pool = served
    assert (await pool.post_json("/echo?close", {"n": 1}))[0] == 200
    assert (await pool.post_json("/echo", {"n": 2}))[0] == 200
    assert len(server.peers) == 2


async def test_no_more_connections_than_the_pool_allows(
    served: tuple[Server, RawHttpPool],
) -> None:
    server, pool = served
    server.release.clear()
    sent = [asyncio.create_task(pool.post_json("/echo", {"n": n})) for n in range(6)]
    # Every request starts before any connection is open: without the limit each would open its
    # own (six peers, six in flight). With it, two hold the server and four wait their turn.
    await server.two_in.wait()
    server.release.set()
    answers = await asyncio.gather(*sent)
    assert [body["got"]["n"] for _, body in answers] == list(range(6))
    assert server.most_in_flight == 2 and len(server.peers) == 2


async def test_an_answer_it_cannot_read_is_an_error(served: tuple[Server, RawHttpPool]) -> None:
    _, pool = served
    with pytest.raises(RawHttpError, match="chunked"):
        await pool.post_json("/chunked", {})
    # the connection it could not finish reading is dropped; the next request gets a good one
    assert (await pool.post_json("/echo", {"n": 1}))[0] == 200
    closed = RawHttpPool("127.0.0.1", 1, size=1)  # nothing listens on port 1
    with pytest.raises(RawHttpError, match="connect"):
        await closed.post_json("/echo", {})
