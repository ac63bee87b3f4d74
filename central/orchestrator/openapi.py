"""The public API as an OpenAPI 3.1 document, generated from the code itself: every route of every
module in central/orchestrator/routes, the pydantic model each handler parses its body and query
with (`parse_body(request, Model)` / `parse_query(request, Model)` in its source), its path
parameters, whether it authenticates, and the envelope every answer uses. Nothing here is written
by hand per route, so a new route or a changed model shows up by itself.

Served at GET /api/openapi.json and rendered at GET /api/docs (plain files in apidocs/); `python -m central openapi [--markdown]` prints it (docs/api-reference.md
is that Markdown, and a test fails when the file is stale)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from central.orchestrator import routes as routes_package

REF = "#/components/schemas/{model}"
_MODEL_CALL = re.compile(r"parse_(body|query)\(\s*request\s*,\s*(\w+)")
_STATUS = re.compile(r"\b(?:created\(|status=(\d{3})|return (\d{3}),)")

ENVELOPE_OK = {
    "type": "object",
    "required": ["success", "data"],
    "properties": {"success": {"const": True}, "data": {}, "pagination": {"type": "object"}},
}
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
        model = handler.__globals__.get(name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            found[kind] = model
    return found


def _success_status(handler: Any, method: str) -> str:
    source = _source(handler)
    for match in _STATUS.finditer(source):
        code = match[1] or match[2]
        if code and code.startswith("2"):
            return code
        if match[0].startswith("created("):
            return "201"
    return "200"


def _operation(tag: str, method: str, path: str, handler: Any) -> tuple[dict[str, Any], list]:
    models = _models(handler)
    source = _source(handler)
    doc = inspect.getdoc(handler) or ""
    op: dict[str, Any] = {
        "operationId": f"{tag}_{handler.__name__}",
        "tags": [tag],
        "summary": doc.split("\n")[0] if doc else handler.__name__.replace("_", " "),
        "responses": {
            _success_status(handler, method): {
                "description": "success",
                "content": {"application/json": {"schema": ENVELOPE_OK}},
            },
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
    return op, used


def build_openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: list[type[BaseModel]] = []
    for tag, table in route_tables():
        for route in table:
            if not isinstance(route, web.RouteDef) or route.method == "*":
                continue
            op, used = _operation(tag, route.method, route.path, route.handler)
            paths.setdefault(route.path, {})[route.method.lower()] = op
            models.extend(m for m in used if m not in models)
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
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


def to_markdown(spec: dict[str, Any]) -> str:
    """docs/api-reference.md: every operation with its body fields, from the document."""
    schemas = spec["components"]["schemas"]
    lines = [
        "# Public API reference",
        "",
        "Generated from the code by `python -m central openapi --markdown` (the same document is",
        "served at `GET /api/openapi.json`); do not edit by hand — a test fails when it is stale.",
        "`docs/public-api.md` explains the calls; `docs/api.md` what this implementation adds.",
        "",
    ]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            security = op.get("security", [])
            auth = " (bearer token optional)" if {} in security else ""
            auth = auth or (" (bearer token)" if security else "")
            lines.append(f"## {method.upper()} {path}{auth}")
            lines.append("")
            lines.append(op["summary"])
            lines.append("")
            for param in op.get("parameters", []):
                need = "required" if param["required"] else "optional"
                lines.append(f"- {param['in']} `{param['name']}` ({need})")
            body = op.get("requestBody")
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                model = schemas[ref]
                required = set(model.get("required", []))
                for name in model.get("properties", {}):
                    need = "required" if name in required else "optional"
                    lines.append(f"- body `{name}` ({need})")
            status = next(code for code in op["responses"] if code != "default")
            lines.append(f"- success: {status}")
            lines.append("")
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
