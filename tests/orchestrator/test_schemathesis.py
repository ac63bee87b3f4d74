"""Schemathesis against /api/openapi.json and a live `python -m central serve`, as a customer, a
staff member, an admin and a gate (issue 13, must show 2): whatever it generates from the
document, no answer is a 5xx, and every answer fits the document (status code and envelope)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from central.local_processes import CentralProcess, make_venue
from central.orchestrator.openapi import build_openapi

SCHEMA = schemathesis.openapi.from_dict(build_openapi())
ROLES = ("customer", "staff", "admin", "gate")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real server with an event, a gate, a buyer and an admin; one bearer token per role."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    central = CentralProcess(
        tmp / "data",
        args=["--auth-rate-limit", "1000000", "--log-level", "WARNING"],
        log_path=tmp / "central.log",
    ).start()
    try:
        venue = make_venue(central, seats=4, credits=1000)
        venue.buy(venue.seat_ids[0])
        central.admin(
            "create-user", "--email", "staff@fuzz.test", "--password", "pw-123456789",
            "--role", "staff",
        )  # fmt: skip
        staff = central.call(
            "POST", "/api/auth/login", json={"email": "staff@fuzz.test", "password": "pw-123456789"}
        )
        yield {
            "url": central.url,
            "log": str(central.log_path),
            "customer": venue.buyer_token,
            "staff": staff["access_token"],
            "admin": venue.admin_token,
            "gate": venue.gate_token,
        }
    finally:
        central.stop()


@pytest.mark.parametrize("role", ROLES)
@SCHEMA.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_5xx_and_every_answer_fits_the_document(
    case: schemathesis.Case, role: str, live: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=live["url"],
        headers={"Authorization": f"Bearer {live[role]}"},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        timeout=30,
    )
