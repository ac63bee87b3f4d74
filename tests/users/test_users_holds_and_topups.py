"""Credit holds and top-up crediting in the users service, on SQLite and PostgreSQL: a held amount
cannot be spent by any burst of concurrent debits, one live hold per reference however many open it
at once, a release with the money going back in one transaction, and a top-up credited once by a
burst of concurrent confirmations."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from central.errors import ApiError
from central.users.holds import HoldStore
from central.users.ledger import Ledger
from central.users.topups import TopupStore
from tests.users.test_users_ledger import assert_consistent, new_user


async def burst(n: int, action: object) -> list[object]:
    go = asyncio.Event()

    async def one(i: int) -> object:
        await go.wait()
        try:
            return await action(i)  # type: ignore[operator]
        except ApiError as err:
            return err.code

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(0)
    go.set()
    return list(await asyncio.gather(*tasks))


async def test_concurrent_debits_cannot_spend_a_held_amount(engine: AsyncEngine) -> None:
    ledger, holds = Ledger(engine), HoldStore(engine)
    user_id = await new_user(engine, credits=100)
    await holds.place(user_id, 60, "dispute:t1")

    async def debit(i: int) -> object:
        entry, _ = await ledger.post(user_id=user_id, amount=-10, kind="PURCHASE", key=f"spend-{i}")
        return entry.amount

    results = await burst(20, debit)
    assert results.count(-10) == 4  # 100 - 60 held leaves 40: four debits of 10
    assert results.count("INSUFFICIENT_CREDITS") == 16
    await assert_consistent(ledger, user_id, 60)
    assert await holds.held(user_id) == 60
    # a credit is never held back; after the release everything is spendable
    await holds.release("dispute:t1")
    entry, _ = await ledger.post(user_id=user_id, amount=-60, kind="PURCHASE", key="spend-all")
    assert entry.balance_after == 0


async def test_a_refused_debit_reports_the_held_credits(engine: AsyncEngine) -> None:
    ledger, holds = Ledger(engine), HoldStore(engine)
    user_id = await new_user(engine, credits=100)
    await holds.place(user_id, 60, "dispute:t2")
    with pytest.raises(ApiError) as exc:
        await ledger.post(user_id=user_id, amount=-41, kind="PURCHASE", key="over")
    assert exc.value.code == "INSUFFICIENT_CREDITS"
    assert exc.value.details == {
        "current_balance": 100,
        "required": 41,
        "held_credits": 60,
        "user_id": user_id,
    }
    entry, replayed = await ledger.post(user_id=user_id, amount=-40, kind="PURCHASE", key="fits")
    assert not replayed and entry.balance_after == 60
    # a credit is never held back
    entry, _ = await ledger.post(user_id=user_id, amount=5, kind="REFUND", key="back")
    assert entry.balance_after == 65
    await assert_consistent(ledger, user_id, 65)


async def test_one_live_hold_per_reference(engine: AsyncEngine) -> None:
    holds = HoldStore(engine)
    user_id = await new_user(engine, credits=100)

    async def place(i: int) -> object:
        _, created = await holds.place(user_id, 30, "dispute:t2")
        return created

    results = await burst(10, place)
    assert results.count(True) == 1 and results.count(False) == 9
    assert await holds.held(user_id) == 30
    with pytest.raises(ApiError) as err:
        await holds.place(user_id, 31, "dispute:t2")
    assert err.value.code == "IDEMPOTENCY_CONFLICT"
    released = await asyncio.gather(*(holds.release("dispute:t2") for _ in range(5)))
    assert sum(h is not None for h in released) == 1
    assert await holds.held(user_id) == 0
    # a later dispute of the same transfer holds again
    _, created = await holds.place(user_id, 30, "dispute:t2")
    assert created and await holds.held(user_id) == 30


async def test_reverse_releases_the_hold_in_the_same_transaction(engine: AsyncEngine) -> None:
    ledger, holds = Ledger(engine), HoldStore(engine)
    seller = await new_user(engine, credits=50)
    buyer = await new_user(engine, credits=0)
    await holds.place(seller, 50, "dispute:t3")

    # without releasing the hold the seller's held credits cannot move
    with pytest.raises(ApiError) as err:
        await ledger.transfer(from_user_id=seller, to_user_id=buyer, amount=50, key="plain")
    assert err.value.code == "INSUFFICIENT_CREDITS"

    async def reverse(i: int) -> object:
        _, to_balance, replayed = await ledger.transfer(
            from_user_id=seller,
            to_user_id=buyer,
            amount=50,
            key="reverse:t3",
            release_hold="dispute:t3",
        )
        return replayed

    results = await burst(6, reverse)
    assert results.count(False) == 1  # the money moved once
    await assert_consistent(ledger, seller, 0)
    await assert_consistent(ledger, buyer, 50)
    assert await holds.held(seller) == 0


async def test_a_reverse_the_seller_cannot_pay_keeps_the_hold(engine: AsyncEngine) -> None:
    ledger, holds = Ledger(engine), HoldStore(engine)
    seller = await new_user(engine, credits=20)  # spent the proceeds before the dispute
    buyer = await new_user(engine)
    await holds.place(seller, 50, "dispute:t4")
    with pytest.raises(ApiError) as err:
        await ledger.transfer(
            from_user_id=seller, to_user_id=buyer, amount=50, key="r4", release_hold="dispute:t4"
        )
    assert err.value.code == "INSUFFICIENT_CREDITS"
    assert await holds.held(seller) == 50  # rolled back with the failed transfer
    await assert_consistent(ledger, seller, 20)


async def test_a_topup_is_credited_once_by_concurrent_confirmations(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    topups = TopupStore(engine, ledger)
    user_id = await new_user(engine, credits=3)
    topup = await topups.create(user_id=user_id, amount=25, provider="stripe")

    async def confirm(i: int) -> object:
        return (await topups.credit(topup.topup_id)).first

    results = await burst(12, confirm)
    assert results.count(True) == 1 and results.count(False) == 11
    await assert_consistent(ledger, user_id, 28)
    assert (await topups.get(topup.topup_id)).status == "PAID"
    entry = await ledger.entry(f"topup:{topup.topup_id}")
    assert entry is not None and entry.kind == "TOPUP" and entry.amount == 25
