"""The one JSON codec of the public and internal APIs: orjson (Rust; several times faster than
the standard library at encoding the answers every request builds), with the standard library's
behaviour where the two differ and it matters to us (keys that are not strings are written as
text, as `json.dumps` does)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

_OPTIONS = orjson.OPT_NON_STR_KEYS

JSONDecodeError = orjson.JSONDecodeError


def dumps_bytes(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


def dumps(value: Any) -> str:
    """For aiohttp's client (`json_serialize=`), which wants text."""
    return orjson.dumps(value, option=_OPTIONS).decode()


def loads(raw: str | bytes) -> Any:
    return orjson.loads(raw)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """web.json_response without the text round trip: the encoder's bytes are the body."""
    return web.Response(body=dumps_bytes(data), status=status, content_type="application/json")
