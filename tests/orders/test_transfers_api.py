"""Transfers over real HTTP on SQLite and PostgreSQL: one live transfer per seat, state machine,
party confirmations."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.orders.conftest import Api


def new_transfer(**over: Any) -> dict[str, Any]:
    body = {
        "transfer_id": str(uuid.uuid4()),
        "seat_id": str(uuid.uuid4()),
        "seller_user_id": str(uuid.uuid4()),
        "buyer_user_id": str(uuid.uuid4()),
        "credits_amount": 200,
        "initiated_by": "SELLER",
    }
    body.update(over)
    return body


async def make_transfer(api: Api, **over: Any) -> dict[str, Any]:
    status, body = await api.call("POST", "/transfers", new_transfer(**over))
    assert status == 201, body
    return body["data"]


async def move(api: Api, transfer_id: str, to: str, **extra: Any) -> tuple[int, Any]:
    return await api.call("POST", f"/transfers/{transfer_id}/transition", {"to": to, **extra})


async def test_create_then_get(api: Api) -> None:
    body = new_transfer(initiated_by="BUYER")
    status, created = await api.call("POST", "/transfers", body)
    assert status == 201
    transfer = created["data"]
    for key in body:
        assert transfer[key] == body[key]
    assert transfer["status"] == "INITIATED"
    assert transfer["seller_confirmed"] is False and transfer["buyer_confirmed"] is False
    assert transfer["completed_at"] is None and transfer["dispute_reason"] is None
    status, got = await api.call("GET", f"/transfers/{body['transfer_id']}")
    assert (status, got["data"]) == (200, transfer)


async def test_create_is_idempotent_by_transfer_id(api: Api) -> None:
    body = new_transfer()
    first = await api.call("POST", "/transfers", body)
    again = await api.call("POST", "/transfers", body)
    assert (first[0], again[0]) == (201, 200)
    assert again[1]["data"] == first[1]["data"]
    status, err = await api.call("POST", "/transfers", {**body, "credits_amount": 5})
    assert (status, err["error_code"]) == (409, "IDEMPOTENCY_CONFLICT")
    assert await api.count("transfers") == 1


async def test_self_transfer_is_refused(api: Api) -> None:
    user = str(uuid.uuid4())
    status, err = await api.call(
        "POST", "/transfers", new_transfer(seller_user_id=user, buyer_user_id=user)
    )
    assert (status, err["error_code"]) == (400, "SELF_TRANSFER")
    assert await api.count("transfers") == 0


async def test_second_transfer_of_a_seat_is_in_progress(api: Api) -> None:
    first = await make_transfer(api)
    status, err = await api.call("POST", "/transfers", new_transfer(seat_id=first["seat_id"]))
    assert (status, err["error_code"]) == (409, "TRANSFER_IN_PROGRESS")
    assert err["details"]["transfer_id"] == first["transfer_id"]
    # still in progress while it waits for OTPs
    await move(api, first["transfer_id"], "PENDING_OTP")
    status, err = await api.call("POST", "/transfers", new_transfer(seat_id=first["seat_id"]))
    assert (status, err["error_code"]) == (409, "TRANSFER_IN_PROGRESS")
    assert await api.count("transfers") == 1


async def test_concurrent_initiations_for_one_seat_one_wins(api: Api) -> None:
    seat = str(uuid.uuid4())
    bodies = [new_transfer(seat_id=seat) for _ in range(6)]
    results = await asyncio.gather(*(api.call("POST", "/transfers", b) for b in bodies))
    statuses = sorted(s for s, _ in results)
    assert statuses == [201] + [409] * 5, results
    assert {b["error_code"] for s, b in results if s == 409} == {"TRANSFER_IN_PROGRESS"}
    rows = await api.rows("SELECT status FROM transfers")
    assert [r["status"] for r in rows] == ["INITIATED"]


@pytest.mark.parametrize(
    "ending", [["FAILED"], ["PENDING_OTP", "FAILED"], ["PENDING_OTP", "COMPLETED"]]
)
async def test_a_finished_transfer_frees_the_seat(api: Api, ending: list[str]) -> None:
    first = await make_transfer(api)
    for to in ending:
        assert (await move(api, first["transfer_id"], to))[0] == 200
    second = await make_transfer(api, seat_id=first["seat_id"])
    assert second["status"] == "INITIATED"
    # and the new one blocks a third
    status, err = await api.call("POST", "/transfers", new_transfer(seat_id=first["seat_id"]))
    assert (status, err["error_code"]) == (409, "TRANSFER_IN_PROGRESS")


@pytest.mark.parametrize(
    "path",
    [
        ["PENDING_OTP"],
        ["FAILED"],
        ["PENDING_OTP", "COMPLETED"],
        ["PENDING_OTP", "FAILED"],
        ["PENDING_OTP", "COMPLETED", "DISPUTED"],
        ["PENDING_OTP", "COMPLETED", "DISPUTED", "REVERSED"],
        ["PENDING_OTP", "COMPLETED", "DISPUTED", "COMPLETED"],
    ],
)
async def test_every_allowed_transition(api: Api, path: list[str]) -> None:
    transfer = await make_transfer(api)
    for to in path:
        extra = {"reason": "buyer says not received"} if to == "DISPUTED" else {}
        status, body = await move(api, transfer["transfer_id"], to, **extra)
        assert status == 200, body
        assert body["data"]["status"] == to
    _, got = await api.call("GET", f"/transfers/{transfer['transfer_id']}")
    assert got["data"]["status"] == path[-1]


async def test_completed_at_and_dispute_reason(api: Api) -> None:
    transfer = await make_transfer(api)
    await move(api, transfer["transfer_id"], "PENDING_OTP")
    _, body = await move(api, transfer["transfer_id"], "COMPLETED")
    assert body["data"]["completed_at"].endswith("Z")
    _, body = await move(api, transfer["transfer_id"], "DISPUTED", reason="wrong seat")
    assert body["data"]["dispute_reason"] == "wrong seat"
    rows = await api.rows("SELECT dispute_reason FROM transfers")
    assert rows[0]["dispute_reason"] == "wrong seat"


async def test_a_disputed_seat_refuses_a_new_transfer(api: Api) -> None:
    first = await make_transfer(api)
    for to in ("PENDING_OTP", "COMPLETED"):
        assert (await move(api, first["transfer_id"], to))[0] == 200
    status, _ = await move(api, first["transfer_id"], "DISPUTED", reason="wrong seat")
    assert status == 200
    status, err = await api.call("POST", "/transfers", new_transfer(seat_id=first["seat_id"]))
    assert err["error_code"] == "SEAT_DISPUTED", (status, err)
    assert err["details"]["transfer_id"] == first["transfer_id"]


async def test_no_dispute_while_the_seat_is_being_passed_on(api: Api) -> None:
    first = await make_transfer(api)
    for to in ("PENDING_OTP", "COMPLETED"):
        assert (await move(api, first["transfer_id"], to))[0] == 200
    await make_transfer(api, seat_id=first["seat_id"])
    status, err = await move(api, first["transfer_id"], "DISPUTED", reason="wrong seat")
    assert (status, err["error_code"]) == (409, "TRANSFER_IN_PROGRESS")
    _, got = await api.call("GET", f"/transfers/{first['transfer_id']}")
    assert got["data"]["status"] == "COMPLETED"


async def test_a_dispute_needs_a_reason(api: Api) -> None:
    transfer = await make_transfer(api)
    await move(api, transfer["transfer_id"], "PENDING_OTP")
    await move(api, transfer["transfer_id"], "COMPLETED")
    status, err = await move(api, transfer["transfer_id"], "DISPUTED")
    assert (status, err["error_code"], err["details"]["field"]) == (
        400,
        "VALIDATION_ERROR",
        "reason",
    )
    _, got = await api.call("GET", f"/transfers/{transfer['transfer_id']}")
    assert got["data"]["status"] == "COMPLETED"


async def test_same_state_again_is_unchanged(api: Api) -> None:
    transfer = await make_transfer(api)
    _, first = await move(api, transfer["transfer_id"], "PENDING_OTP")
    status, again = await move(api, transfer["transfer_id"], "PENDING_OTP")
    assert (status, again["data"]) == (200, first["data"])
    status, still = await move(api, transfer["transfer_id"], "INITIATED")
    assert (status, still["error_code"]) == (409, "TRANSFER_INVALID_STATE")


@pytest.mark.parametrize(
    ("path", "to", "status_now"),
    [
        ([], "COMPLETED", "INITIATED"),
        ([], "DISPUTED", "INITIATED"),
        ([], "REVERSED", "INITIATED"),
        (["PENDING_OTP"], "DISPUTED", "PENDING_OTP"),
        (["PENDING_OTP"], "INITIATED", "PENDING_OTP"),
        (["FAILED"], "PENDING_OTP", "FAILED"),
        (["PENDING_OTP", "COMPLETED"], "REVERSED", "COMPLETED"),
        (["PENDING_OTP", "COMPLETED"], "FAILED", "COMPLETED"),
        (["PENDING_OTP", "COMPLETED", "DISPUTED", "REVERSED"], "COMPLETED", "REVERSED"),
    ],
)
async def test_disallowed_transitions(api: Api, path: list[str], to: str, status_now: str) -> None:
    transfer = await make_transfer(api)
    for step in path:
        extra = {"reason": "r"} if step == "DISPUTED" else {}
        assert (await move(api, transfer["transfer_id"], step, **extra))[0] == 200
    extra = {"reason": "r"} if to == "DISPUTED" else {}
    status, err = await move(api, transfer["transfer_id"], to, **extra)
    assert status == 409
    assert err["error_code"] == "TRANSFER_INVALID_STATE"
    assert err["details"]["status"] == status_now
    _, got = await api.call("GET", f"/transfers/{transfer['transfer_id']}")
    assert got["data"]["status"] == status_now


async def test_unknown_transfer_is_not_found(api: Api) -> None:
    missing = str(uuid.uuid4())
    for method, path, body in [
        ("GET", f"/transfers/{missing}", None),
        ("POST", f"/transfers/{missing}/transition", {"to": "FAILED"}),
        ("POST", f"/transfers/{missing}/confirm-party", {"party": "seller"}),
    ]:
        status, err = await api.call(method, path, body)
        assert (status, err["error_code"]) == (404, "TRANSFER_NOT_FOUND")


async def test_confirm_party_only_while_pending_otp(api: Api) -> None:
    transfer = await make_transfer(api)
    tid = transfer["transfer_id"]
    status, err = await api.call("POST", f"/transfers/{tid}/confirm-party", {"party": "seller"})
    assert (status, err["error_code"], err["details"]["status"]) == (
        409,
        "TRANSFER_INVALID_STATE",
        "INITIATED",
    )
    await move(api, tid, "PENDING_OTP")
    status, body = await api.call("POST", f"/transfers/{tid}/confirm-party", {"party": "seller"})
    assert status == 200
    assert (body["data"]["seller_confirmed"], body["data"]["buyer_confirmed"]) == (True, False)
    status, body = await api.call("POST", f"/transfers/{tid}/confirm-party", {"party": "buyer"})
    assert (body["data"]["seller_confirmed"], body["data"]["buyer_confirmed"]) == (True, True)
    await move(api, tid, "COMPLETED")
    # a retry of a confirmation that took effect is still a success ...
    status, body = await api.call("POST", f"/transfers/{tid}/confirm-party", {"party": "buyer"})
    assert status == 200
    # ... but a failed transfer never takes a new confirmation
    other = await make_transfer(api)
    await move(api, other["transfer_id"], "FAILED")
    status, err = await api.call(
        "POST", f"/transfers/{other['transfer_id']}/confirm-party", {"party": "buyer"}
    )
    assert (status, err["details"]["status"]) == (409, "FAILED")
    rows = await api.rows(
        f"SELECT buyer_confirmed FROM transfers WHERE transfer_id = '{other['transfer_id']}'"
    )
    assert not rows[0]["buyer_confirmed"]


async def test_list_transfers_by_seat_user_and_status(api: Api) -> None:
    seat, user = str(uuid.uuid4()), str(uuid.uuid4())
    a = await make_transfer(api, seat_id=seat, seller_user_id=user)
    await move(api, a["transfer_id"], "FAILED")
    b = await make_transfer(api, seat_id=seat)
    c = await make_transfer(api, buyer_user_id=user)

    async def ids(query: str) -> list[str]:
        status, body = await api.call("GET", f"/transfers?{query}")
        assert status == 200, body
        return [t["transfer_id"] for t in body["data"]]

    assert await ids(f"seat_id={seat}") == [b["transfer_id"], a["transfer_id"]]
    assert await ids(f"user_id={user}") == [c["transfer_id"], a["transfer_id"]]
    assert await ids(f"seat_id={seat}&status=INITIATED") == [b["transfer_id"]]
    assert await ids("status=FAILED") == [a["transfer_id"]]
