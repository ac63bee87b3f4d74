"""What every inventory RPC goes through: the internal credential, the caller's correlation id,
mapping InventoryError to a status code, and one JSON log line (method, code, ms) per call.

Done by wrapping the method handler rather than in intercept_service itself, because the handler
runs in its own task: a context variable set in intercept_service would not reach it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from central.db import is_outage
from central.inventory.convert import seat_message
from central.inventory.errors import SEAT_TRAILER_KEY, InventoryError, Kind
from central.logs import correlation_id, new_correlation_id, service_name

log = logging.getLogger(__name__)

TOKEN_KEY = "x-internal-token"
CORRELATION_KEY = "correlation-id"

STATUS_BY_KIND = {
    Kind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Kind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Kind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Kind.ABORTED: grpc.StatusCode.ABORTED,
}

# (method, code name, seconds) after every call: feeds the metrics.
Observer = Callable[[str, str, float], None]
Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, internal_token: str, observer: Observer | None = None):
        self._token = internal_token.encode()
        self._observer = observer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # unknown method: gRPC answers UNIMPLEMENTED itself
        metadata: dict[str, Any] = {}
        for item in handler_call_details.invocation_metadata or ():  # type: ignore[attr-defined]
            metadata[item[0]] = item[1]
        method = handler_call_details.method.rsplit("/", 1)[-1]  # type: ignore[attr-defined]
        given = metadata.get(TOKEN_KEY, "")
        authorized = isinstance(given, str) and hmac.compare_digest(given.encode(), self._token)
        cid = str(metadata.get(CORRELATION_KEY) or "")[:128] or new_correlation_id()
        behavior = self._wrap(handler.unary_unary, method, authorized, cid)
        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, inner: Behavior, method: str, authorized: bool, cid: str) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = correlation_id.set(cid)
            service_token = service_name.set("inventory")
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if not authorized:
                    code = grpc.StatusCode.UNAUTHENTICATED
                    await context.abort(code, "UNAUTHORIZED: internal service credential required")
                try:
                    return await inner(request, context)
                except InventoryError as err:
                    code = STATUS_BY_KIND[err.kind]
                    trailers: tuple[tuple[str, bytes], ...] = ()
                    if err.seat is not None:
                        trailers = ((SEAT_TRAILER_KEY, seat_message(err.seat).SerializeToString()),)
                    await context.abort(code, err.detail, trailers)
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    if is_outage(exc):
                        # the caller maps UNAVAILABLE to "try again" (503), as for a restart of
                        # inventory itself
                        log.warning("database unavailable in %s: %s", method, exc)
                        code = grpc.StatusCode.UNAVAILABLE
                        await context.abort(code, "SERVICE_UNAVAILABLE: database unavailable")
                    log.exception("unhandled error in %s", method)
                    code = grpc.StatusCode.INTERNAL
                    await context.abort(code, "INTERNAL_ERROR: internal error")
            finally:
                elapsed = time.perf_counter() - started
                log.info(
                    "rpc %s %s",
                    method,
                    code.name,
                    extra={
                        "correlation_id": cid,
                        "fields": {
                            "method": method,
                            "code": code.name,
                            "ms": round(elapsed * 1000, 2),
                        },
                    },
                )
                if self._observer is not None:
                    self._observer(method, code.name, elapsed)
                correlation_id.reset(token)
                service_name.reset(service_token)

        return behavior
