"""How a public route answers: its handler returns an instance of the pydantic model it declares
with ``@answers(Model)``, and the envelope ``{success: true, data}`` is built here from that
instance. The OpenAPI document (openapi.py) reads the same declaration, so what is documented is
what is sent: a handler returning anything but its model fails at once instead of drifting.

Routes whose answers are stored for replay (Idempotency-Key) build the stored body with
``envelope(Model(...))`` and return the finished response; pages and images declare their media
type with ``@serves``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from central.jsoncodec import json_response

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ANSWER_ATTR = "__answer__"
SERVES_ATTR = "__serves__"


class AnswerModel(BaseModel):
    """A public answer. Built from a service's record, fields it does not name are left out (the
    public answer is exactly the model); the document says so (additionalProperties: false)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


class Pagination(AnswerModel):
    page: int
    per_page: int
    total: int
    total_pages: int


@dataclass(frozen=True)
class Paged(Generic[M]):
    """A list answer with the envelope's ``pagination`` beside ``data``."""

    items: M
    pagination: Pagination | None


@dataclass(frozen=True)
class Declared:
    model: type[BaseModel]
    status: int
    paged: bool


def dump(model: BaseModel) -> Any:
    # exclude_unset: an optional field the answer did not carry stays absent, as it always was
    return model.model_dump(mode="json", exclude_unset=True)


def envelope(model: BaseModel) -> dict[str, Any]:
    return {"success": True, "data": dump(model)}


def answers(
    model: type[M], status: int = 200, *, paged: bool = False
) -> Callable[[Callable[[web.Request], Awaitable[M | Paged[M] | web.Response]]], Handler]:
    def decorate(
        fn: Callable[[web.Request], Awaitable[M | Paged[M] | web.Response]],
    ) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            result = await fn(request)
            if isinstance(result, web.StreamResponse):
                return result  # an idempotent route's stored envelope(model) answer
            extra: dict[str, Any] = {}
            data: BaseModel = result.items if isinstance(result, Paged) else result
            if isinstance(result, Paged) and result.pagination is not None:
                extra["pagination"] = result.pagination.model_dump(mode="json")
            if not isinstance(data, model):
                raise TypeError(f"{fn.__qualname__} answered {type(data).__name__}, not {model}")
            return json_response({"success": True, "data": dump(data), **extra}, status=status)

        setattr(handler, ANSWER_ATTR, Declared(model, status, paged))
        return handler

    return decorate


def serves(*media_types: str) -> Callable[[Handler], Handler]:
    """A page, script or image rather than a JSON answer."""

    def decorate(fn: Handler) -> Handler:
        setattr(fn, SERVES_ATTR, media_types)
        return fn

    return decorate


def declared(handler: Any) -> Declared | None:
    found = getattr(handler, ANSWER_ATTR, None)
    return found if isinstance(found, Declared) else None
