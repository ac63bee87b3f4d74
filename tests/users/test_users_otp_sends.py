"""OTP messages are capped per user and purpose in a time window, so nobody can make the service
text or mail a user without end (transfer initiate → three wrong codes → initiate again sent a
new code every time). The count and the decision are one transaction: a burst released at once
ends with exactly the cap sent."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from central.config import Settings
from central.users.otp import OTP_SEND_LIMIT, OTP_SEND_WINDOW
from tests.users.conftest import HEADERS, AppFactory, FakeClock, read_codes, register


async def _challenge(client: Any, user_id: str) -> tuple[int, dict[str, Any], str | None]:
    body = {"user_id": user_id, "purpose": "transfer", "reference_id": str(uuid.uuid4())}
    resp = await client.post("/otp/challenges", json=body, headers=HEADERS)
    return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def test_a_burst_of_code_requests_sends_exactly_the_cap(
    make_client: AppFactory, clock: FakeClock, otp_file: Path
) -> None:
    client = await make_client()
    user = await register(client, "otp@example.com", verified=True)
    other = await register(client, "other@example.com", verified=True)
    go = asyncio.Event()

    async def one() -> tuple[int, dict[str, Any], str | None]:
        await go.wait()
        return await _challenge(client, user["user_id"])

    tasks = [asyncio.create_task(one()) for _ in range(3 * OTP_SEND_LIMIT)]
    await asyncio.sleep(0.05)
    go.set()
    answers = await asyncio.gather(*tasks)
    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {200: OTP_SEND_LIMIT, 429: 2 * OTP_SEND_LIMIT}, statuses
    for status, body, retry_after in answers:
        if status == 429:
            assert body["error_code"] == "RATE_LIMITED"
            wait = body["details"]["retry_after_s"]
            assert 0 < wait <= OTP_SEND_WINDOW.total_seconds()
            assert retry_after == str(wait)
    sent = [c for c in read_codes(otp_file) if c["user_id"] == user["user_id"]]
    assert len(sent) == OTP_SEND_LIMIT
    # Another user is not affected, and the window passes.
    assert (await _challenge(client, other["user_id"]))[0] == 200
    clock.advance(OTP_SEND_WINDOW.total_seconds() + 1)
    assert (await _challenge(client, user["user_id"]))[0] == 200


async def test_the_cap_is_the_services_setting(make_client: AppFactory, settings: Settings) -> None:
    """`--otp-send-limit` sets the cap (a load test's handful of users pass tickets all day)."""
    client = await make_client(settings=dataclasses.replace(settings, otp_send_limit=2))
    user = await register(client, "few@example.com", verified=True)
    statuses = [(await _challenge(client, user["user_id"]))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
