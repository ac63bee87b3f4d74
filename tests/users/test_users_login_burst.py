"""The per-account login lockout under a burst of parallel guesses, released at once: the failure
count and the decision to check the password are one atomic step, so no more than the limit of
guesses ever reach the password hash, and the right password does not get in once locked."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from central.users.store import LOGIN_FAILURE_LIMIT
from tests.users.conftest import AppFactory, call, register

RIGHT = "correct horse battery"


async def _burst(client: Any, bodies: list[dict[str, str]]) -> list[tuple[int, dict[str, Any]]]:
    go = asyncio.Event()

    async def one(body: dict[str, str]) -> tuple[int, dict[str, Any]]:
        await go.wait()
        return await call(client, "POST", "/auth/login", body)

    tasks = [asyncio.create_task(one(b)) for b in bodies]
    await asyncio.sleep(0.05)  # every task is parked on the event
    go.set()
    return list(await asyncio.gather(*tasks))


async def test_parallel_wrong_passwords_get_no_more_checks_than_the_limit(
    make_client: AppFactory,
) -> None:
    client = await make_client()
    await register(client, "burst@example.com", verified=True)
    wrong = {"email": "burst@example.com", "password": "wrong password!"}
    answers = await _burst(client, [wrong] * 60)
    statuses = Counter(status for status, _ in answers)
    # 401 means the password hash was really checked; everything past the limit is refused unseen.
    assert statuses[401] == LOGIN_FAILURE_LIMIT, statuses
    assert statuses[429] == 60 - LOGIN_FAILURE_LIMIT, statuses
    locked = [body for status, body in answers if status == 429]
    assert all(body["error_code"] == "RATE_LIMITED" for body in locked)
    # Locked: the right password is refused too.
    status, body = await call(
        client, "POST", "/auth/login", {"email": "burst@example.com", "password": RIGHT}
    )
    assert (status, body["error_code"]) == (429, "RATE_LIMITED")


async def test_the_right_password_in_a_burst_after_the_lock_does_not_get_in(
    make_client: AppFactory,
) -> None:
    client = await make_client()
    await register(client, "lock@example.com", verified=True)
    wrong = {"email": "lock@example.com", "password": "wrong password!"}
    right = {"email": "lock@example.com", "password": RIGHT}
    first = await _burst(client, [wrong] * LOGIN_FAILURE_LIMIT)
    assert all(status == 401 for status, _ in first)
    # The account is now locked: a second burst mixing the right password among wrong ones.
    second = await _burst(client, [wrong] * 20 + [right] + [wrong] * 20)
    assert {status for status, _ in second} == {429}, Counter(s for s, _ in second)


async def test_a_success_does_not_erase_the_failures_of_a_burst(make_client: AppFactory) -> None:
    client = await make_client()
    await register(client, "mix@example.com", verified=True)
    wrong = {"email": "mix@example.com", "password": "wrong password!"}
    right = {"email": "mix@example.com", "password": RIGHT}
    # The owner logs in while someone guesses: at most the limit of guesses are ever checked.
    answers = await _burst(client, [right] + [wrong] * 40)
    statuses = Counter(status for status, _ in answers)
    assert statuses[401] <= LOGIN_FAILURE_LIMIT, statuses
    assert statuses[401] + statuses[200] <= LOGIN_FAILURE_LIMIT + 1, statuses
