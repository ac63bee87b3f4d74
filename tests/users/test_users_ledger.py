"""The credit ledger on SQLite and PostgreSQL: conditional debits under concurrency,
idempotency keys, transfers in one transaction, and the cached balance equal to the ledger sum."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.errors import ApiError
from central.users.ledger import Ledger
from central.users.schema import credit_ledger
from central.users.store import UserStore


async def new_user(engine: AsyncEngine, credits: int = 0) -> str:
    user = await UserStore(engine).create_user(
        email=f"{uuid.uuid4().hex[:10]}@example.com",
        phone=None,
        password_hash="x",
        verified=True,
        credits=credits,
    )
    return user.user_id


async def assert_consistent(ledger: Ledger, user_id: str, expected: int) -> None:
    assert await ledger.balance(user_id) == expected
    assert await ledger.cached_balance(user_id) == expected


async def test_100_concurrent_debits_exactly_37_succeed(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    user_id = await new_user(engine, credits=37 * 5)

    async def debit(i: int) -> bool:
        try:
            await ledger.post(user_id=user_id, amount=-5, kind="PURCHASE", key=f"buy-{i}")
            return True
        except ApiError as err:
            assert err.code == "INSUFFICIENT_CREDITS"
            return False

    results = await asyncio.gather(*(debit(i) for i in range(100)))
    assert sum(results) == 37
    await assert_consistent(ledger, user_id, 0)
    # 37 debits plus the registration grant, and not one entry for a refused debit.
    assert await ledger.count_entries() == 38


async def test_repeated_key_repeats_no_effect(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    user_id = await new_user(engine, credits=100)
    first, replayed = await ledger.post(
        user_id=user_id, amount=-30, kind="PURCHASE", key="k1", reference_id="order-1"
    )
    assert not replayed and first.balance_after == 70
    again, replayed = await ledger.post(
        user_id=user_id, amount=-30, kind="PURCHASE", key="k1", reference_id="order-1"
    )
    assert replayed
    assert again.entry_id == first.entry_id and again.balance_after == 70
    await assert_consistent(ledger, user_id, 70)


async def test_same_key_other_amount_or_user_is_a_conflict(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    a = await new_user(engine, credits=100)
    b = await new_user(engine, credits=100)
    await ledger.post(user_id=a, amount=-10, kind="PURCHASE", key="k")
    for user_id, amount in ((a, -11), (b, -10)):
        with pytest.raises(ApiError) as exc:
            await ledger.post(user_id=user_id, amount=amount, kind="PURCHASE", key="k")
        assert exc.value.code == "IDEMPOTENCY_CONFLICT"
    await assert_consistent(ledger, a, 90)
    await assert_consistent(ledger, b, 100)


async def test_concurrent_same_key_applies_once(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    user_id = await new_user(engine, credits=1000)
    results = await asyncio.gather(
        *(ledger.post(user_id=user_id, amount=-7, kind="PURCHASE", key="same") for _ in range(30))
    )
    assert [replayed for _, replayed in results].count(False) == 1
    assert len({entry.entry_id for entry, _ in results}) == 1
    assert {entry.balance_after for entry, _ in results} == {993}
    await assert_consistent(ledger, user_id, 993)


async def test_insufficient_credits_writes_nothing(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    user_id = await new_user(engine, credits=10)
    before = await ledger.count_entries()
    with pytest.raises(ApiError) as exc:
        await ledger.post(user_id=user_id, amount=-11, kind="PURCHASE", key="too-much")
    assert exc.value.code == "INSUFFICIENT_CREDITS"
    assert exc.value.details and exc.value.details["current_balance"] == 10
    assert await ledger.count_entries() == before
    assert await ledger.entry("too-much") is None
    await assert_consistent(ledger, user_id, 10)


async def test_repeat_answers_as_repeat_when_it_would_no_longer_fit(engine: AsyncEngine) -> None:
    """The write is tried before the key is looked up: a refused repeat is still a repeat."""
    ledger = Ledger(engine)
    user_id = await new_user(engine, credits=50)
    first, _ = await ledger.post(user_id=user_id, amount=-30, kind="PURCHASE", key="k")
    again, replayed = await ledger.post(user_id=user_id, amount=-30, kind="PURCHASE", key="k")
    assert replayed and again == first and again.balance_after == 20
    with pytest.raises(ApiError) as exc:  # the key taken, and no room for this one either
        await ledger.post(user_id=user_id, amount=-40, kind="PURCHASE", key="k")
    assert exc.value.code == "IDEMPOTENCY_CONFLICT"
    with pytest.raises(ApiError) as exc:  # the key taken, by an existing user's entry
        await ledger.post(user_id=str(uuid.uuid4()), amount=-30, kind="PURCHASE", key="k")
    assert exc.value.code == "IDEMPOTENCY_CONFLICT"
    assert await ledger.count_entries() == 2
    await assert_consistent(ledger, user_id, 20)


async def test_a_conflicting_key_that_fits_moves_nothing(engine: AsyncEngine) -> None:
    """The balance change and the refused entry are undone together."""
    ledger = Ledger(engine)
    user_id = await new_user(engine, credits=100)
    await ledger.post(user_id=user_id, amount=-10, kind="PURCHASE", key="k")
    for amount, kind in ((-5, "PURCHASE"), (5, "REFUND")):
        with pytest.raises(ApiError) as exc:
            await ledger.post(user_id=user_id, amount=amount, kind=kind, key="k")
        assert exc.value.code == "IDEMPOTENCY_CONFLICT"
    entry = await ledger.entry("k")
    assert entry and entry.amount == -10 and entry.balance_after == 90
    await assert_consistent(ledger, user_id, 90)


async def test_unknown_user_is_user_not_found(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    with pytest.raises(ApiError) as exc:
        await ledger.post(user_id=str(uuid.uuid4()), amount=5, kind="GRANT", key="g")
    assert exc.value.code == "USER_NOT_FOUND"
    with pytest.raises(ApiError) as exc:
        await ledger.balance(str(uuid.uuid4()))
    assert exc.value.code == "USER_NOT_FOUND"


async def test_transfer_moves_in_one_transaction_and_replays(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    seller = await new_user(engine, credits=5)
    buyer = await new_user(engine, credits=50)
    result = await ledger.transfer(from_user_id=buyer, to_user_id=seller, amount=20, key="t1")
    assert result == (30, 25, False)
    assert await ledger.transfer(from_user_id=buyer, to_user_id=seller, amount=20, key="t1") == (
        30,
        25,
        True,
    )
    debit, credit = await ledger.entry("t1:debit"), await ledger.entry("t1:credit")
    assert debit and debit.amount == -20 and debit.kind == "TRANSFER_OUT"
    assert credit and credit.amount == 20 and credit.kind == "TRANSFER_IN"
    with pytest.raises(ApiError) as exc:
        await ledger.transfer(from_user_id=buyer, to_user_id=seller, amount=21, key="t1")
    assert exc.value.code == "IDEMPOTENCY_CONFLICT"
    await assert_consistent(ledger, buyer, 30)
    await assert_consistent(ledger, seller, 25)


async def test_failed_transfer_writes_nothing(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    a = await new_user(engine, credits=10)
    b = await new_user(engine, credits=0)
    before = await ledger.count_entries()
    with pytest.raises(ApiError) as exc:
        await ledger.transfer(from_user_id=a, to_user_id=b, amount=11, key="t")
    assert exc.value.code == "INSUFFICIENT_CREDITS"
    with pytest.raises(ApiError) as exc:
        await ledger.transfer(from_user_id=a, to_user_id=str(uuid.uuid4()), amount=5, key="t")
    assert exc.value.code == "USER_NOT_FOUND"
    with pytest.raises(ApiError) as exc:
        await ledger.transfer(from_user_id=a, to_user_id=a, amount=5, key="t")
    assert exc.value.code == "SELF_TRANSFER"
    assert await ledger.count_entries() == before
    await assert_consistent(ledger, a, 10)
    await assert_consistent(ledger, b, 0)


async def test_concurrent_opposite_transfers_keep_totals(engine: AsyncEngine) -> None:
    """A→B and B→A at once: no deadlock, no credit created or lost."""
    ledger = Ledger(engine)
    a = await new_user(engine, credits=100)
    b = await new_user(engine, credits=100)

    async def move(i: int) -> None:
        src, dst = (a, b) if i % 2 else (b, a)
        try:
            await ledger.transfer(from_user_id=src, to_user_id=dst, amount=15, key=f"x{i}")
        except ApiError as err:
            assert err.code == "INSUFFICIENT_CREDITS"

    await asyncio.gather(*(move(i) for i in range(40)))
    total = await ledger.balance(a) + await ledger.balance(b)
    assert total == 200
    for user_id in (a, b):
        assert await ledger.balance(user_id) == await ledger.cached_balance(user_id)


async def test_cached_column_equals_ledger_sum_for_every_user(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    users = [await new_user(engine, credits=c) for c in (0, 7, 100)]
    for i, user_id in enumerate(users):
        await ledger.post(user_id=user_id, amount=40, kind="GRANT", key=f"g{i}")
        await ledger.post(user_id=user_id, amount=-3, kind="PURCHASE", key=f"p{i}")
        await ledger.post(user_id=user_id, amount=2, kind="REFUND", key=f"r{i}")
    async with engine.connect() as conn:
        sums = dict(
            (
                await conn.execute(
                    sa.select(
                        credit_ledger.c.user_id, sa.func.sum(credit_ledger.c.amount)
                    ).group_by(credit_ledger.c.user_id)
                )
            ).all()
        )
    for user_id, start in zip(users, (0, 7, 100), strict=True):
        assert await ledger.cached_balance(user_id) == start + 39
        assert int(sums[user_id]) == start + 39
