"""The public API as an OpenAPI 3.1 document, generated from the code itself: every route of every
module in central/orchestrator/routes, the pydantic model each handler parses its body and query
with (`parse_body(request, Model)` / `parse_query(request, Model)` in its source), the model it
answers with (`@answers(Model)`, answers.py: the handler returns that model, so the document is
what is sent) or the media type it serves (`@serves`), its path parameters and whether it
authenticates. Nothing here is written by hand per route, so a new route or a changed model shows
up by itself.

Served at GET /api/openapi.json and rendered at GET /api/docs (plain files in apidocs/);
`python -m central openapi [--markdown]` prints it (docs/api.md is that Markdown, and a test
fails when the file is stale)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from central.orchestrator import routes as routes_package
from central.orchestrator.answers import SERVES_ATTR, Pagination, declared

REF = "#/components/schemas/{model}"
_MODEL_CALL = re.compile(r"parse_(body|query)\(\s*request\s*,\s*(\w+)")
ENVELOPE_ERROR = {
    "type": "object",
    "required": ["success", "error_code", "message"],
    "properties": {
        "success": {"const": False},
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}


def route_tables() -> list[tuple[str, web.RouteTableDef]]:
    """Every `routes` table of the route modules, in module-name order."""
    tables = []
    for info in sorted(pkgutil.iter_modules(routes_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{routes_package.__name__}.{info.name}")
        table = getattr(module, "routes", None)
        if isinstance(table, web.RouteTableDef):
            tables.append((info.name, table))
    return tables


def _source(handler: Any) -> str:
    """The handler's source and that of the module functions it hands the request to
    (`return await _gate_verify(request)`), one level deep."""
    handler = inspect.unwrap(handler)
    source = inspect.getsource(handler)
    for name in re.findall(r"\b(_?\w+)\(request\b", source):
        helper = handler.__globals__.get(name)
        if inspect.isfunction(helper) and helper.__module__ == handler.__module__:
            source += inspect.getsource(helper)
    return source


def _models(handler: Any) -> dict[str, type[BaseModel]]:
    source = _source(handler)
    found: dict[str, type[BaseModel]] = {}
    for kind, name in _MODEL_CALL.findall(source):
        model = inspect.unwrap(handler).__globals__.get(name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            found[kind] = model
    return found


def _success(handler: Any) -> tuple[str, dict[str, Any], list[type[BaseModel]]]:
    """The success status and its content: the envelope around the declared answer model, or
    the media types a page or image is served as."""
    answer = declared(handler)
    if answer is not None:
        props: dict[str, Any] = {
            "success": {"const": True},
            "data": {"$ref": REF.format(model=answer.model.__name__)},
        }
        used: list[type[BaseModel]] = [answer.model]
        if answer.paged:
            props["pagination"] = {"$ref": REF.format(model=Pagination.__name__)}
            used.append(Pagination)
        schema = {
            "type": "object",
            "required": ["success", "data"],
            "properties": props,
            "additionalProperties": False,
        }
        return str(answer.status), {"application/json": {"schema": schema}}, used
    media = getattr(handler, SERVES_ATTR, None)
    if not media:
        raise TypeError(f"{handler.__qualname__}: declare @answers(Model) or @serves(type)")
    return "200", {m: {"schema": {"type": "string"}} for m in media}, []


def _operation(
    tag: str, path: str, handler: Any
) -> tuple[dict[str, Any], list, list[type[BaseModel]]]:
    models = _models(handler)
    source = _source(handler)
    doc = inspect.getdoc(handler) or ""
    status, content, answer_models = _success(handler)
    op: dict[str, Any] = {
        "operationId": f"{tag}_{handler.__name__}",
        "tags": [tag],
        "summary": doc.split("\n")[0] if doc else handler.__name__.replace("_", " "),
        "responses": {
            status: {"description": "success", "content": content},
            "default": {
                "description": "an error (api-contract error codes)",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            },
        },
    }
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    used: list[type[BaseModel]] = []
    query = models.get("query")
    if query is not None:
        # enums and nested types of a query model land in components like a body's
        used.append(query)
        schema = query.model_json_schema(ref_template=REF)
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                }
            )
    if params:
        op["parameters"] = params
    body = models.get("body")
    if body is not None:
        used.append(body)
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=body.__name__)}}},
        }
    if re.search(r"\bauthenticate\w*\(", source):
        optional = 'headers.get("Authorization")' in source  # e.g. OTP resend at registration
        op["security"] = [{}, {"bearer": []}] if optional else [{"bearer": []}]
    return op, used, answer_models


def build_openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: list[type[BaseModel]] = []
    answer_models: list[type[BaseModel]] = []
    for tag, table in route_tables():
        for route in table:
            if not isinstance(route, web.RouteDef) or route.method == "*":
                continue
            op, used, answered = _operation(tag, route.path, route.handler)
            paths.setdefault(route.path, {})[route.method.lower()] = op
            models.extend(m for m in used if m not in models)
            answer_models.extend(m for m in answered if m not in answer_models)
    # requests as they are parsed, answers as they are sent
    _, defs = models_json_schema(
        [(m, "validation") for m in models] + [(m, "serialization") for m in answer_models],
        ref_template=REF,
    )
    schemas = {**defs.get("$defs", {}), "Error": ENVELOPE_ERROR}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TicketRemaster public API",
            "version": "1",
            "description": "Every answer is an envelope: {success: true, data} or {success: "
            "false, error_code, message, details?}. Generated from the code.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


MARKDOWN_INTRO = """\
# Public API reference

Generated from the code by `python -m central openapi --markdown > docs/api.md`; the same
document is served as OpenAPI 3.1 at `GET /api/openapi.json` and rendered at `GET /api/docs`. Do
not edit this page by hand: a test fails when it is stale. `docs/public-api.md` explains the calls
(the contract, and what this implementation adds to it); the models below are the ones the code
parses requests with and builds answers from, so they are what is accepted and what is sent.

Every answer is an envelope: `{"success": true, "data": <model>}` (lists may add `pagination`),
or `{"success": false, "error_code", "message", "details"?}` with the error's HTTP status. A body
with an unknown field, or several wrong ones, is one 400 naming each in `details.fields`. Calls
marked *bearer token* need `Authorization: Bearer <token>` (an access token; gates send their
device token). A field marked *optional* in an answer appears only in some answers.
"""


def _type(schema: dict[str, Any]) -> str:
    """A JSON schema as a short type: `string`, `integer | null`, `[Ticket]`, `{string: integer}`."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " | ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"[{_type(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"{{string: {_type(schema['additionalProperties'])}}}"
    return str(kind)


def _fields(model: dict[str, Any]) -> list[str]:
    if "properties" not in model:  # a list answer (RootModel) or a plain type
        return [f"- {_type(model)}"]
    required = set(model.get("required", []))
    return [
        f"- `{name}`: {_type(prop)}" + ("" if name in required else " (optional)")
        for name, prop in model["properties"].items()
    ]


def _model_name(content: dict[str, Any]) -> str | None:
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref") or schema.get("properties", {}).get("data", {}).get("$ref")
    return str(ref).rsplit("/", 1)[1] if ref else None


def to_markdown(spec: dict[str, Any]) -> str:
    """docs/api.md: every operation with its parameters, body and answer, then every model."""
    lines = [MARKDOWN_INTRO]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            security = op.get("security", [])
            auth = " (bearer token optional)" if {} in security else ""
            auth = auth or (" (bearer token)" if security else "")
            lines += [f"## {method.upper()} {path}{auth}", "", op["summary"], ""]
            for param in op.get("parameters", []):
                need = "required" if param["required"] else "optional"
                lines.append(
                    f"- {param['in']} `{param['name']}`: {_type(param['schema'])} ({need})"
                )
            body = op.get("requestBody")
            if body:
                lines.append(f"- body: `{_model_name(body['content'])}`")
            status, answer = next((c, r) for c, r in op["responses"].items() if c != "default")
            model = _model_name(answer["content"])
            paged = "pagination" in (
                answer["content"]
                .get("application/json", {})
                .get("schema", {})
                .get("properties", {})
            )
            if model:
                lines.append(
                    f"- answers {status}: `{model}`" + (" with `pagination`" if paged else "")
                )
            else:
                lines.append(
                    f"- answers {status}: " + ", ".join(f"`{m}`" for m in answer["content"])
                )
            lines.append("")
    lines += ["# Models", ""]
    for name, model in spec["components"]["schemas"].items():
        lines += [f"## {name}", ""]
        if model.get("description"):
            lines += [" ".join(str(model["description"]).split()), ""]
        lines += [*_fields(model), ""]
    return "\n".join(lines).rstrip() + "\n"


_cached: dict[str, Any] = {}


async def openapi_json(request: web.Request) -> web.Response:
    """GET /api/openapi.json: this document (built once; the routes do not change at run time)."""
    if "spec" not in _cached:
        _cached["spec"] = build_openapi()
    return web.json_response(_cached["spec"])


DOCS_DIR = Path(__file__).parent / "apidocs"
DOCS_FILES = {
    "index.html": "text/html",
    "apidocs.js": "text/javascript",
    "apidocs.css": "text/css",
}
# the page's own files only: no inline script, nothing from another host
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def api_docs(request: web.Request) -> web.Response:
    """GET /api/docs (the page) and /api/docs/{name} (its script and style sheet)."""
    name = request.match_info.get("name", "index.html")
    if name not in DOCS_FILES:
        raise web.HTTPNotFound()
    body = await asyncio.to_thread((DOCS_DIR / name).read_bytes)
    return web.Response(
        body=body,
        content_type=DOCS_FILES[name],
        charset="utf-8",
        headers={"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff"},
    )
