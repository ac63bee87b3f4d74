"""GET /api/openapi.json: an OpenAPI 3.1 document generated from the routes and their pydantic
request and answer models, covering every public route; docs/api.md is generated from it and a
test fails when it is stale (issue 13)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cluster import running_cluster

from central.orchestrator.answer_models import Ticket
from central.orchestrator.answers import AnswerModel, answers
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


def test_docs_api_md_is_generated_from_the_document() -> None:
    """Regenerate with: .venv/bin/python -m central openapi --markdown > docs/api.md"""
    current = (ROOT / "docs" / "api.md").read_text()
    assert current == to_markdown(build_openapi()), "docs/api.md is stale"
    spec = build_openapi()
    operations = re.findall(r"^## (?:GET|POST|PATCH|PUT|DELETE) /", current, flags=re.M)
    assert len(operations) == sum(len(m) for m in spec["paths"].values())
    for name in spec["components"]["schemas"]:
        assert f"\n## {name}\n" in current, name


def test_every_answer_is_a_model_or_a_media_type() -> None:
    """No operation falls back to a generic envelope: each names the model its handler returns
    (or the media type of a page or image), and the answer models say exactly what is sent."""
    spec = build_openapi()
    schemas = spec["components"]["schemas"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            (status, answer), *_ = [(c, r) for c, r in op["responses"].items() if c != "default"]
            content = answer["content"]
            if "application/json" not in content:
                assert all(not m.endswith("json") for m in content), (method, path)
                continue
            envelope = content["application/json"]["schema"]
            assert envelope["additionalProperties"] is False, (method, path)
            ref = envelope["properties"]["data"]["$ref"].rsplit("/", 1)[1]
            assert ref in schemas, (method, path)
    tickets = spec["paths"]["/api/tickets"]["get"]["responses"]["200"]["content"]
    data = tickets["application/json"]["schema"]["properties"]["data"]["$ref"]
    assert data.endswith("/TicketList")
    assert schemas["TicketList"]["items"]["$ref"].endswith("/Ticket")
    assert set(schemas["Ticket"]["properties"]) == set(Ticket.model_fields)
    assert schemas["Ticket"]["additionalProperties"] is False
    events = spec["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
    assert "pagination" in events["application/json"]["schema"]["properties"]
    png = spec["paths"]["/api/tickets/{seat_id}/qr.png"]["get"]["responses"]["200"]["content"]
    assert list(png) == ["image/png"]
    assert "201" in spec["paths"]["/api/transfer/initiate"]["post"]["responses"]


async def test_a_handler_answering_another_model_fails_instead_of_drifting() -> None:
    class Promised(AnswerModel):
        seat_id: str

    class Other(AnswerModel):
        seat_id: str
        owner_email: str

    @answers(Promised)
    async def handler(request: web.Request) -> Any:
        return Other(seat_id="s", owner_email="someone@example.test")

    @answers(Promised, 201)
    async def honest(request: web.Request) -> Promised:
        return Promised.model_validate({"seat_id": "s", "owner_email": "left out"})

    request = make_mocked_request("GET", "/")
    with pytest.raises(TypeError, match="Other"):
        await handler(request)
    response = await honest(request)
    assert response.status == 201
    assert json.loads(response.text) == {"success": True, "data": {"seat_id": "s"}}
