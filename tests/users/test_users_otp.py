"""OTP challenges on SQLite and PostgreSQL: expiry, three attempts (also concurrently), resends,
a new challenge killing the old one, and codes stored only as hashes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.errors import ApiError
from central.users.otp import OtpStore, new_code
from central.users.schema import otp_challenges
from central.users.store import UserStore
from tests.users.conftest import FakeClock

REF = str(uuid.uuid4())


async def new_user(engine: AsyncEngine) -> str:
    user = await UserStore(engine).create_user(
        email=f"{uuid.uuid4().hex[:10]}@example.com", phone=None, password_hash="x"
    )
    return user.user_id


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def expect(code: str, coro: object) -> ApiError:
    with pytest.raises(ApiError) as exc:
        await coro  # type: ignore[misc]
    assert exc.value.code == code, exc.value.message
    return exc.value


@pytest.fixture
def otp(engine: AsyncEngine, clock: FakeClock) -> OtpStore:
    return OtpStore(engine, "k" * 32, clock)


def test_codes_are_six_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150  # random, not a constant


async def test_verify_right_code(engine: AsyncEngine, otp: OtpStore) -> None:
    user_id = await new_user(engine)
    challenge, code = await otp.create(user_id, "purchase", REF)
    assert challenge.attempts_left == 3
    verified = await otp.verify(user_id, "purchase", REF, code)
    assert verified.verified_at is not None
    status = await otp.current(user_id, "purchase", REF)
    assert status is not None and status.status(otp.clock())["verified"] is True


async def test_code_is_stored_hashed(engine: AsyncEngine, otp: OtpStore) -> None:
    user_id = await new_user(engine)
    _, code = await otp.create(user_id, "purchase", REF)
    async with engine.connect() as conn:
        stored = await conn.scalar(sa.select(otp_challenges.c.code_hash))
    assert stored and code not in stored and len(stored) == 64


async def test_three_wrong_codes_kill_the_challenge(engine: AsyncEngine, otp: OtpStore) -> None:
    user_id = await new_user(engine)
    _, code = await otp.create(user_id, "transfer", REF)
    err = await expect("OTP_INVALID", otp.verify(user_id, "transfer", REF, wrong(code)))
    assert err.details == {"attempts_left": 2}
    err = await expect("OTP_INVALID", otp.verify(user_id, "transfer", REF, wrong(code)))
    assert err.details == {"attempts_left": 1}
    await expect("OTP_MAX_RETRIES", otp.verify(user_id, "transfer", REF, wrong(code)))
    # Dead: even the right code no longer works.
    await expect("OTP_MAX_RETRIES", otp.verify(user_id, "transfer", REF, code))


async def test_concurrent_wrong_codes_get_three_guesses(engine: AsyncEngine, otp: OtpStore) -> None:
    user_id = await new_user(engine)
    _, code = await otp.create(user_id, "purchase", REF)

    async def guess() -> str:
        try:
            await otp.verify(user_id, "purchase", REF, wrong(code))
        except ApiError as err:
            return err.code
        return "VERIFIED"

    outcomes = await asyncio.gather(*(guess() for _ in range(12)))
    assert outcomes.count("OTP_INVALID") == 2
    assert outcomes.count("OTP_MAX_RETRIES") == 10
    current = await otp.current(user_id, "purchase", REF)
    assert current is not None and current.attempts_left == 0
    await expect("OTP_MAX_RETRIES", otp.verify(user_id, "purchase", REF, code))


async def test_expired_code_then_resend(
    engine: AsyncEngine, otp: OtpStore, clock: FakeClock
) -> None:
    user_id = await new_user(engine)
    _, old = await otp.create(user_id, "registration", user_id)
    clock.advance(5 * 60 + 1)
    await expect("OTP_EXPIRED", otp.verify(user_id, "registration", user_id, old))
    challenge, new = await otp.resend(user_id, "registration", user_id)
    assert challenge.status(otp.clock())["resends_left"] == 2
    if new != old:  # one in a million they coincide; the old one is dead either way
        await expect("OTP_INVALID", otp.verify(user_id, "registration", user_id, old))
    await otp.verify(user_id, "registration", user_id, new)


async def test_resend_at_most_three_times(engine: AsyncEngine, otp: OtpStore) -> None:
    user_id = await new_user(engine)
    await otp.create(user_id, "purchase", REF)
    for left in (2, 1, 0):
        challenge, _ = await otp.resend(user_id, "purchase", REF)
        assert challenge.status(otp.clock())["resends_left"] == left
    await expect("RATE_LIMITED", otp.resend(user_id, "purchase", REF))
    await expect("OTP_NOT_FOUND", otp.resend(user_id, "purchase", str(uuid.uuid4())))


async def test_new_challenge_kills_the_old(engine: AsyncEngine, otp: OtpStore) -> None:
    user_id = await new_user(engine)
    first, old = await otp.create(user_id, "purchase", REF)
    second, new = await otp.create(user_id, "purchase", REF)
    assert first.challenge_id != second.challenge_id
    if old != new:
        await expect("OTP_INVALID", otp.verify(user_id, "purchase", REF, old))
    await otp.verify(user_id, "purchase", REF, new)


async def test_concurrent_new_challenges_leave_one_current(
    engine: AsyncEngine, otp: OtpStore
) -> None:
    user_id = await new_user(engine)
    results = await asyncio.gather(*(otp.create(user_id, "purchase", REF) for _ in range(8)))
    async with engine.connect() as conn:
        live = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(otp_challenges)
            .where(otp_challenges.c.superseded == sa.false())
        )
    assert live == 1
    current = await otp.current(user_id, "purchase", REF)
    assert current is not None
    winner = [code for ch, code in results if ch.challenge_id == current.challenge_id]
    assert len(winner) == 1
    await otp.verify(user_id, "purchase", REF, winner[0])


async def test_unknown_challenge(engine: AsyncEngine, otp: OtpStore) -> None:
    user_id = await new_user(engine)
    await expect("OTP_NOT_FOUND", otp.verify(user_id, "purchase", REF, "123456"))
    assert await otp.current(user_id, "purchase", REF) is None
