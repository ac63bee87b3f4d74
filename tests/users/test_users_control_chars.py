"""docs/internal-api.md promises a 400 for a NUL (or any control character) in a text field; an
e-mail address with one must not become an account."""

from __future__ import annotations

import pytest

from central.orchestrator.schemas import RegisterBody
from tests.users.conftest import AppFactory, call, row_counts


@pytest.mark.parametrize(
    "email", ["a\x00b@example.com", "ann@exam\x00ple.com", "ann\x1f@example.com"]
)
async def test_control_characters_in_an_email_are_refused(
    make_client: AppFactory, email: str
) -> None:
    client = await make_client()
    before = await row_counts(client)
    status, body = await call(
        client, "POST", "/users", {"email": email, "password": "correct horse battery"}
    )
    assert (status, body["error_code"], body["details"]["field"]) == (
        400,
        "VALIDATION_ERROR",
        "email",
    )
    assert await row_counts(client) == before


@pytest.mark.parametrize("email", ["a\x00b@example.com", "ann\x7f@example.com"])
def test_the_public_register_body_refuses_them_too(email: str) -> None:
    with pytest.raises(ValueError):
        RegisterBody.model_validate({"email": email, "password": "correct horse battery"})
