"""GET /api/openapi.json: an OpenAPI 3.1 document generated from the routes and their pydantic
models, covering every public route; docs/api-reference.md is generated from it and a test fails
when it is stale (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cluster import running_cluster

from central.orchestrator.openapi import build_openapi, to_markdown
from central.orchestrator.schemas import CreateEventBody, RegisterBody

ROOT = Path(__file__).resolve().parents[2]
NOT_DOCUMENTED = {"/health", "/metrics", "/api/openapi.json", "/api/docs", "/api/docs/{name}"}


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


async def test_the_served_document_covers_every_route_of_the_running_app(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        status, served = await c.call("GET", "/api/openapi.json")
        served_routes = {
            (route.method.lower(), route.resource.canonical)
            for route in c.app.router.routes()
            if route.method not in ("HEAD", "*") and route.resource is not None
        }
    assert status == 200
    assert served == build_openapi()
    assert served["openapi"] == "3.1.0"
    documented = {(m, p) for p, methods in served["paths"].items() for m in methods}
    expected = {(m, p) for m, p in served_routes if p not in NOT_DOCUMENTED}
    assert documented == expected


def test_request_bodies_are_the_models_the_handlers_parse() -> None:
    spec = build_openapi()
    schemas = spec["components"]["schemas"]
    for ref in refs(spec):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    register = spec["paths"]["/api/auth/register"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RegisterBody"
    )
    assert set(schemas["RegisterBody"]["properties"]) == set(RegisterBody.model_fields)
    assert schemas["RegisterBody"]["additionalProperties"] is False  # unknown fields refused
    assert set(schemas["CreateEventBody"]["required"]) == {
        name for name, f in CreateEventBody.model_fields.items() if f.is_required()
    }
    assert "201" in spec["paths"]["/api/admin/events"]["post"]["responses"]
    verify = spec["paths"]["/api/gate/verify"]["post"]  # its model is parsed in a helper
    assert verify["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/GateVerifyBody"
    )
    assert verify["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/api/events"]["get"]
    events_params = {p["name"] for p in spec["paths"]["/api/events"]["get"]["parameters"]}
    assert events_params == {"page", "per_page"}
    path_params = spec["paths"]["/api/tickets/{seat_id}/qr"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in path_params] == [("seat_id", "path")]


def test_docs_api_reference_is_generated_from_the_document() -> None:
    """Regenerate with: .venv/bin/python -m central openapi --markdown > docs/api-reference.md"""
    current = (ROOT / "docs" / "api-reference.md").read_text()
    assert current == to_markdown(build_openapi()), "docs/api-reference.md is stale"
    assert len(re.findall(r"^## ", current, flags=re.M)) == sum(
        len(m) for m in build_openapi()["paths"].values()
    )
