"""Gates over real HTTP on SQLite and PostgreSQL: the device token is shown once and stored only as
its SHA-256; a disabled gate is refused at once."""

from __future__ import annotations

import hashlib
import uuid

from tests.events.conftest import Api


async def add_gate(api: Api, hall_id: str = "HALL-A", name: str = "North 1") -> dict[str, object]:
    status, body = await api.call("POST", "/gates", {"hall_id": hall_id, "name": name})
    assert status == 201, body
    return body["data"]


async def test_token_shown_once_and_only_its_hash_stored(api: Api) -> None:
    gate = await add_gate(api)
    token = gate["device_token"]
    assert isinstance(token, str) and len(token) >= 40
    assert gate["enabled"] is True and gate["hall_id"] == "HALL-A" and gate["name"] == "North 1"
    rows = await api.rows("SELECT * FROM gates")
    assert len(rows) == 1
    assert rows[0]["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in rows[0].values())
    # never again in any answer
    _, one = await api.call("GET", f"/gates/{gate['gate_id']}")
    _, many = await api.call("GET", "/gates")
    _, patched = await api.call("PATCH", f"/gates/{gate['gate_id']}", {"enabled": True})
    for answer in (one, many, patched):
        assert token not in str(answer)
        assert "device_token" not in str(answer) and "token_sha256" not in str(answer)


async def test_each_gate_gets_its_own_token(api: Api) -> None:
    a = await add_gate(api)
    b = await add_gate(api)
    assert a["device_token"] != b["device_token"]
    assert a["gate_id"] != b["gate_id"]


async def test_authenticate_answers_the_gate(api: Api) -> None:
    gate = await add_gate(api, hall_id="HALL-B", name="South")
    status, body = await api.call(
        "POST", "/gates/authenticate", {"device_token": gate["device_token"]}
    )
    assert status == 200
    assert body["data"]["gate_id"] == gate["gate_id"]
    assert body["data"]["hall_id"] == "HALL-B"
    assert body["data"]["enabled"] is True


async def test_unknown_token_is_refused(api: Api) -> None:
    gate = await add_gate(api)
    for token in ("not-a-token", str(gate["device_token"]) + "x", str(gate["device_token"])[:-1]):
        status, err = await api.call("POST", "/gates/authenticate", {"device_token": token})
        assert (status, err["error_code"]) == (401, "UNAUTHORIZED")


async def test_disabling_a_gate_refuses_its_token_at_once(api: Api) -> None:
    gate = await add_gate(api)
    token = {"device_token": gate["device_token"]}
    assert (await api.call("POST", "/gates/authenticate", token))[0] == 200
    status, body = await api.call("PATCH", f"/gates/{gate['gate_id']}", {"enabled": False})
    assert (status, body["data"]["enabled"]) == (200, False)
    status, err = await api.call("POST", "/gates/authenticate", token)
    # a revoked gate is told so (GATE_REVOKED), unlike an unknown token (UNAUTHORIZED)
    assert (status, err["error_code"]) == (401, "GATE_REVOKED")
    assert err["details"]["gate_id"] == gate["gate_id"]
    _, got = await api.call("GET", f"/gates/{gate['gate_id']}")
    assert got["data"]["enabled"] is False
    # re-enabling restores the same token
    await api.call("PATCH", f"/gates/{gate['gate_id']}", {"enabled": True})
    assert (await api.call("POST", "/gates/authenticate", token))[0] == 200


async def test_list_gates_by_hall(api: Api) -> None:
    a1 = await add_gate(api, "HALL-A", "A1")
    a2 = await add_gate(api, "HALL-A", "A2")
    b1 = await add_gate(api, "HALL-B", "B1")
    _, body = await api.call("GET", "/gates?hall_id=HALL-A")
    assert [g["gate_id"] for g in body["data"]] == [a1["gate_id"], a2["gate_id"]]
    _, body = await api.call("GET", "/gates")
    assert {g["gate_id"] for g in body["data"]} == {a1["gate_id"], a2["gate_id"], b1["gate_id"]}
    _, body = await api.call("GET", "/gates?hall_id=HALL-Z")
    assert body["data"] == []


async def test_unknown_gate_is_not_found(api: Api) -> None:
    missing = uuid.uuid4()
    status, err = await api.call("GET", f"/gates/{missing}")
    assert (status, err["error_code"]) == (404, "GATE_NOT_FOUND")
    status, err = await api.call("PATCH", f"/gates/{missing}", {"enabled": False})
    assert (status, err["error_code"]) == (404, "GATE_NOT_FOUND")


async def test_device_tokens_never_look_like_a_command_line_option(api: Api) -> None:
    for _ in range(50):
        status, body = await api.call("POST", "/gates", {"hall_id": "HALL-A", "name": "Lane"})
        assert status == 201, body
        assert body["data"]["device_token"].startswith("trg_")
