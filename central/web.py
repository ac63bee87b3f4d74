"""The plumbing every HTTP service shares: envelope, errors, correlation ids, internal auth,
body validation, /health and /metrics."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import http_exceptions, web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import Step, is_outage, open_database, ping
from central.errors import ApiError
from central.jsoncodec import json_response
from central.logs import correlation_id, new_correlation_id, service_name

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthCheck = Callable[[], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)

CORRELATION_HEADER = "X-Correlation-ID"
INTERNAL_TOKEN_HEADER = "X-Internal-Token"
UNAUTHENTICATED_PATHS = frozenset({"/health", "/metrics"})

# A body that has not arrived by then is answered 408: a slow client holds no handler for long.
BODY_TIMEOUT_S = 10.0
# The status logged and counted for a client that went away before its answer (nginx's choice).
CLIENT_GONE = 499
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

health_checks_key = web.AppKey("health_checks", dict)
body_timeout_key = web.AppKey("body_timeout", float)
metrics_networks_key = web.AppKey("metrics_networks", tuple)
service_key = web.AppKey("service_name", str)
registry_key = web.AppKey("metrics_registry", CollectorRegistry)


def ok(data: Any = None, status: int = 200, **extra: Any) -> web.Response:
    return json_response({"success": True, "data": data, **extra}, status=status)


def created(data: Any) -> web.Response:
    return ok(data, status=201)


def error_response(err: ApiError) -> web.Response:
    return add_retry_after(json_response(err.body(), status=err.status), err.details)


def add_retry_after(response: web.Response, details: Any) -> web.Response:
    """A limit's answer says when to come back, in the body (details.retry_after_s) and, for
    clients that honour it, in the Retry-After header (RFC 9110: whole seconds)."""
    retry_after = details.get("retry_after_s") if isinstance(details, dict) else None
    if isinstance(retry_after, int) and retry_after > 0:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def _message(error: Any) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"  # refused by name rather than silently ignored
    return str(error.get("msg", "invalid"))


def validation_error(exc: ValidationError) -> ApiError:
    """Turn pydantic's report into one 400 naming every bad field at once: the message lists
    them, details.fields maps each to its problem (details.field is the first of them)."""
    errors = exc.errors()
    first = errors[0]
    field = _field_name(tuple(first.get("loc", ())))
    kind = first.get("type", "")
    if kind == "json_invalid":
        return ApiError("VALIDATION_ERROR", "body is not valid JSON")
    if kind in ("model_type", "model_attributes_type", "dict_type") and field == "body":
        return ApiError("VALIDATION_ERROR", "body must be a JSON object")
    fields: dict[str, str] = {}
    for error in errors:
        # a union (e.g. `str | None`) reports one error per branch: keep the first per field
        fields.setdefault(_field_name(tuple(error.get("loc", ()))), _message(error))
    code = "INVALID_UUID" if kind.startswith("uuid") else "VALIDATION_ERROR"
    message = "; ".join(f"{name}: {problem}" for name, problem in fields.items())
    return ApiError(code, message, {"field": field, "fields": fields})


async def read_body(request: web.Request) -> bytes:
    """The whole body, or REQUEST_TIMEOUT when it does not arrive within the app's body timeout."""
    try:
        async with asyncio.timeout(request.app.get(body_timeout_key, BODY_TIMEOUT_S)):
            return await request.read()
    except TimeoutError:
        raise ApiError("REQUEST_TIMEOUT", "the request body did not arrive in time") from None


async def parse_body(request: web.Request, model: type[M]) -> M:
    raw = await read_body(request)
    if not raw:
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from None


def parse_uuid(value: str, field: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ApiError("INVALID_UUID", f"{field}: not a valid UUID") from None


@web.middleware
async def correlation_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    cid = request.headers.get(CORRELATION_HEADER, "")[:128] or new_correlation_id()
    token = correlation_id.set(cid)
    service_token = service_name.set(request.app[service_key])
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except ApiError as err:
            response = error_response(err)
        except web.HTTPException as exc:
            response = _http_exception_response(exc)
        except ConnectionResetError:
            # The client went away mid-request: nothing failed here, and no one reads an answer.
            log.info("client went away on %s %s", request.method, request.path)
            response = web.Response(status=CLIENT_GONE)
        except Exception as exc:
            if is_outage(exc):
                # a database restart is "try again", and a client or service may: not a 500
                log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
                response = error_response(ApiError("SERVICE_UNAVAILABLE", "database unavailable"))
            else:
                log.exception("unhandled error on %s %s", request.method, request.path)
                response = error_response(ApiError("INTERNAL_ERROR", "internal error"))
        status = response.status
        if not response.prepared:
            response.headers[CORRELATION_HEADER] = cid
        return response
    finally:
        elapsed = time.perf_counter() - started
        metrics = request.app.get(_metrics_key)
        if metrics is not None:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            metrics[0].labels(request.method, name, str(status)).inc()
            metrics[1].labels(request.method, name).observe(elapsed)
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={"fields": {"status": status, "ms": round(elapsed * 1000, 2)}},
        )
        correlation_id.reset(token)
        service_name.reset(service_token)


def _http_exception_response(exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        return error_response(ApiError("NOT_FOUND", "no such route"))
    if exc.status == 405:
        return error_response(ApiError("METHOD_NOT_ALLOWED", "method not allowed on this route"))
    if exc.status == 413:
        return error_response(ApiError("PAYLOAD_TOO_LARGE", "request body too large"))
    if exc.status < 400:
        raise exc
    return error_response(ApiError("VALIDATION_ERROR", exc.reason or "bad request"))


def internal_auth_middleware(token: str) -> Any:
    """Atomic services answer only callers holding the internal service credential."""
    expected = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in UNAUTHENTICATED_PATHS:
            given = request.headers.get(INTERNAL_TOKEN_HEADER, "").encode()
            if not hmac.compare_digest(given, expected):
                raise ApiError("UNAUTHORIZED", "internal service credential required")
        return await handler(request)

    return middleware


_metrics_key = web.AppKey("http_metrics", tuple)


async def health(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    healthy = True
    for name, check in request.app[health_checks_key].items():
        try:
            await check()
            checks[name] = "ok"
        except Exception as exc:  # a health probe reports, it never raises
            checks[name] = f"error: {type(exc).__name__}"
            healthy = False
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "service": request.app[service_key],
        "checks": checks,
    }
    return json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    networks: tuple[IpNetwork, ...] | None = request.app.get(metrics_networks_key)
    if networks is not None and not _address_in(request.remote, networks):
        raise ApiError("FORBIDDEN", "metrics are served to the operator's networks only")
    payload = generate_latest(request.app[registry_key])
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _address_in(address: str | None, networks: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


class _QuietBadRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a header over its limit, a broken request line)
    as an ERROR with a traceback, though it answers 400 and nothing failed on our side: one INFO
    line instead, so the error log holds only our own errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError):
            record.msg = f"{record.getMessage()}: bad request ({type(exc).__name__})"
            record.args = ()
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_QUIET_BAD_REQUESTS = _QuietBadRequests()


def attach_database(
    app: web.Application,
    url: str,
    steps: Sequence[Step],
    on_open: Callable[[AsyncEngine], None],
) -> None:
    """Open (and migrate) the service's database for the app's lifetime, hand the engine to
    `on_open` (which builds the stores) and report the database in /health."""

    async def database(app: web.Application) -> AsyncIterator[None]:
        async with open_database(url, steps) as engine:
            on_open(engine)
            app[health_checks_key]["database"] = lambda: ping(engine)
            yield

    app.cleanup_ctx.append(database)


def make_app(
    service: str,
    *,
    internal_token: str | None,
    extra_middlewares: list[Any] | None = None,
    client_max_size: int = 256 * 1024,
    body_timeout: float = BODY_TIMEOUT_S,
    metrics_networks: Sequence[IpNetwork] | None = None,
) -> web.Application:
    """An aiohttp application with the house middleware, /health and /metrics (to everyone, or
    only to clients in metrics_networks)."""
    logging.getLogger("aiohttp.server").addFilter(_QUIET_BAD_REQUESTS)  # once: same object
    middlewares: list[Any] = [correlation_middleware]
    if internal_token is not None:
        middlewares.append(internal_auth_middleware(internal_token))
    middlewares.extend(extra_middlewares or [])
    app = web.Application(middlewares=middlewares, client_max_size=client_max_size)
    registry = CollectorRegistry()
    app[registry_key] = registry
    app[service_key] = service
    app[health_checks_key] = {}
    app[body_timeout_key] = body_timeout
    if metrics_networks is not None:
        app[metrics_networks_key] = tuple(metrics_networks)
    app[_metrics_key] = (
        Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
        ),
        Histogram(
            "http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry
        ),
    )
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app
