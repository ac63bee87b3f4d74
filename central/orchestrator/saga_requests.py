"""What every saga-driving route shares: the Runtime, Idempotency-Key, waiting while another
request or runner drives a saga, and ending a waiting saga."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from central.errors import ApiError
from central.jsoncodec import json_response
from central.orchestrator.auth import Principal
from central.orchestrator.idempotency import Answer, request_hash
from central.orchestrator.keys import runtime_key
from central.orchestrator.runtime import Runtime
from central.saga import SagaBusy, SagaRecord
from central.web import add_retry_after, read_body

WAIT_FOR_OTHER_REQUEST = 30.0


def runtime_of(request: web.Request) -> Runtime:
    runtime = request.app[runtime_key]
    assert isinstance(runtime, Runtime)
    return runtime


async def with_idempotency(
    request: web.Request, principal: Principal, handler: Callable[[], Awaitable[Answer]]
) -> web.Response:
    """Run the handler once per Idempotency-Key (when the caller sent one)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        status, body = await _answer(handler)
    else:
        digest = request_hash(await read_body(request))
        scope = f"{principal.user_id}:{request.path}"
        status, body = await runtime_of(request).idempotency.run(
            scope, key, digest, lambda: _answer(handler)
        )
    details = body.get("details") if isinstance(body, dict) else None
    return add_retry_after(json_response(body, status=status), details)


async def _answer(handler: Callable[[], Awaitable[Answer]]) -> Answer:
    try:
        return await handler()
    except ApiError as err:
        return err.status, err.body()
    except SagaBusy:
        # Our lease lapsed mid-step (a very slow step) and recovery took the saga over: it
        # finishes or rolls it back; the caller asks again for the outcome.
        busy = ApiError("SERVICE_UNAVAILABLE", "the request is being finished elsewhere; ask again")
        return busy.status, busy.body()


async def settled(runtime: Runtime, saga_id: str) -> SagaRecord:
    """The saga once no one is driving it (or as it is after WAIT_FOR_OTHER_REQUEST): woken by
    notification when its driver lets it go (SagaRunner.wait_settled), not by polling."""
    return await runtime.runner.wait_settled(saga_id, WAIT_FOR_OTHER_REQUEST)


async def fail_waiting(runtime: Runtime, saga_id: str, err: ApiError) -> None:
    """Compensate a WAITING saga (codes used up, time run out); a no-op once it has moved on."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_REQUEST
    while time.monotonic() < deadline:
        # Someone took it between our read and our lease: settled() waits for them to let go.
        record = await settled(runtime, saga_id)
        if record.status != "WAITING":
            return
        try:
            await runtime.runner.compensate(saga_id, err)
            return
        except SagaBusy:
            continue
