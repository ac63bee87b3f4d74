"""The hot path's statements run straight on the driver (PostgreSQL) or through the engine (SQLite)
and behave the same: the same rows, the same row counts, fixed values compiled in, SQLAlchemy's
errors for the driver's (a duplicate key is IntegrityError; an unreachable database is an outage),
a forgotten parameter loud, and the driver pool closed with its engine."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from central.db import is_outage, make_engine
from central.direct_sql import DirectPool, HotStatement
from tests.central_process import free_port
from tests.conftest import needs_postgres

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("thing_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    sa.Column("done", sa.Boolean, nullable=False),
)

ADD = HotStatement(things.insert())
OF_KIND = HotStatement(
    sa.select(things)
    .where(things.c.kind == sa.bindparam("p_kind"), things.c.done.is_(False))
    .order_by(things.c.thing_id)
    .limit(sa.bindparam("p_limit", type_=sa.Integer))
)
# "done" is written as a fixed value: it becomes a parameter the caller never names
FINISH = HotStatement(
    things.update().where(things.c.kind == sa.bindparam("p_kind")).values(done=True)
)


@pytest.fixture
async def engine(db_url: str) -> Any:
    engine = await make_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await DirectPool.close_for(engine)
    await engine.dispose()


def row(thing_id: str, kind: str, size: int = 1) -> dict[str, Any]:
    return {"thing_id": thing_id, "kind": kind, "size": size, "blob": b"\x00\x01", "done": False}


async def test_rows_counts_and_fixed_values(engine: AsyncEngine) -> None:
    direct = DirectPool.of(engine)
    assert direct.direct == (engine.dialect.name == "postgresql")
    for thing_id, kind in (("a", "x"), ("b", "x"), ("c", "y")):
        assert await direct.execute(ADD, row(thing_id, kind, size=2**40)) == 1
    rows = await direct.fetch(OF_KIND, {"p_kind": "x", "p_limit": 10})
    assert [(r["thing_id"], r["size"], bytes(r["blob"])) for r in rows] == [
        ("a", 2**40, b"\x00\x01"),
        ("b", 2**40, b"\x00\x01"),
    ]
    assert await direct.fetchrow(OF_KIND, {"p_kind": "z", "p_limit": 10}) is None
    assert await direct.execute(FINISH, {"p_kind": "x"}) == 2
    assert await direct.fetch(OF_KIND, {"p_kind": "x", "p_limit": 10}) == []
    # the same statement through the engine sees what the driver wrote
    async with engine.connect() as conn:
        done = (await conn.execute(sa.select(things.c.thing_id).where(things.c.done))).all()
    assert sorted(r.thing_id for r in done) == ["a", "b"]


async def test_errors_are_sqlalchemys_and_change_nothing(engine: AsyncEngine) -> None:
    direct = DirectPool.of(engine)
    await direct.execute(ADD, row("a", "x"))
    with pytest.raises(sa.exc.IntegrityError):
        await direct.execute(ADD, row("a", "other"))
    with pytest.raises(sa.exc.IntegrityError):  # NOT NULL
        await direct.execute(ADD, {**row("b", "x"), "kind": None})
    # a forgotten parameter is never sent as NULL (the driver path: KeyError; the engine: its own)
    with pytest.raises((KeyError, sa.exc.StatementError)):
        await direct.fetch(OF_KIND, {"p_kind": "x"})
    rows = await direct.fetch(OF_KIND, {"p_kind": "x", "p_limit": 10})
    assert [r["thing_id"] for r in rows] == ["a"]
    assert await direct.fetch(OF_KIND, {"p_kind": "other", "p_limit": 10}) == []


async def test_an_unreachable_postgresql_is_an_outage() -> None:
    nowhere = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    direct = DirectPool.of(nowhere)
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught:
            await direct.fetch(OF_KIND, {"p_kind": "x", "p_limit": 1})
        assert is_outage(caught.value)
    finally:
        await DirectPool.close_for(nowhere)
        await nowhere.dispose()


async def test_the_driver_pool_closes_with_its_engine(engine: AsyncEngine) -> None:
    direct = DirectPool.of(engine)
    assert DirectPool.of(engine) is direct  # one per engine
    await direct.execute(ADD, row("a", "x"))
    await DirectPool.close_for(engine)
    assert DirectPool.of(engine) is not direct  # a new one after closing, opened on demand
    assert [
        r["thing_id"]
        for r in await DirectPool.of(engine).fetch(OF_KIND, {"p_kind": "x", "p_limit": 5})
    ] == ["a"]


def test_an_in_list_is_refused_when_first_compiled(engine: AsyncEngine) -> None:
    # an IN list is expanded per execution: no single text the driver could prepare
    listed = HotStatement(sa.select(things).where(things.c.kind.in_(["x", "y"])))
    with pytest.raises(ValueError, match="IN list"):
        listed.for_driver(engine.dialect)
    either = HotStatement(
        sa.select(things).where(sa.or_(things.c.kind == "x", things.c.kind == "y"))
    )
    assert either.for_driver(engine.dialect).fixed == {"kind_1": "x", "kind_2": "y"}


class Undecided(Exception):
    """The caller's own reason to undo what its transaction wrote."""


async def test_a_transaction_commits_together_or_not_at_all(engine: AsyncEngine) -> None:
    direct = DirectPool.of(engine)
    async with direct.transaction() as txn:
        assert await txn.execute(ADD, row("a", "x")) == 1
        assert await txn.execute(ADD, row("b", "x")) == 1
        # the transaction sees its own rows before it commits
        assert [r["thing_id"] for r in await txn.fetch(OF_KIND, {"p_kind": "x", "p_limit": 9})] == [
            "a",
            "b",
        ]
    # the caller's own exception undoes the block's writes, and reaches the caller unchanged
    with pytest.raises(Undecided):
        async with direct.transaction() as txn:
            await txn.execute(ADD, row("c", "x"))
            assert await txn.execute(FINISH, {"p_kind": "x"}) == 3
            raise Undecided
    # a statement that fails mid-way (a duplicate key) undoes the statements before it
    with pytest.raises(sa.exc.IntegrityError):
        async with direct.transaction() as txn:
            await txn.execute(ADD, row("d", "x"))
            await txn.execute(ADD, row("a", "again"))
    rows = await direct.fetch(OF_KIND, {"p_kind": "x", "p_limit": 9})
    assert [(r["thing_id"], r["done"]) for r in rows] == [("a", False), ("b", False)]
    async with direct.transaction() as txn:
        assert (await txn.fetchrow(OF_KIND, {"p_kind": "x", "p_limit": 9}))["thing_id"] == "a"
        assert await txn.fetchrow(OF_KIND, {"p_kind": "none", "p_limit": 9}) is None
    if direct.direct:
        # every connection went back to the pool, the failed and the undone ones too
        pool = await direct._driver_pool()
        assert pool.get_size() >= 1 and pool.get_idle_size() == pool.get_size()


TRY_LOCK = HotStatement(
    sa.select(sa.func.pg_try_advisory_lock(sa.bindparam("p_key", type_=sa.BigInteger)).label("got"))
)
UNLOCK = HotStatement(
    sa.select(sa.func.pg_advisory_unlock(sa.bindparam("p_key", type_=sa.BigInteger)).label("freed"))
)


async def test_a_session_keeps_one_connection_across_its_statements(engine: AsyncEngine) -> None:
    direct = DirectPool.of(engine)
    async with direct.session() as conn:
        assert await conn.execute(ADD, row("a", "x")) == 1
        assert [
            r["thing_id"] for r in await conn.fetch(OF_KIND, {"p_kind": "x", "p_limit": 9})
        ] == ["a"]
    # each statement committed on its own (SQLite's one connection is free again only now)
    assert (await direct.fetchrow(OF_KIND, {"p_kind": "x", "p_limit": 9}))["thing_id"] == "a"
    if not direct.direct:
        return
    # a session-level lock taken by one statement is still held at the next (same connection),
    # and another session cannot take it until it is released
    key = {"p_key": 7_314_999}
    async with direct.session() as holder, direct.session() as other:
        assert (await holder.fetchrow(TRY_LOCK, key))["got"] is True
        assert (await holder.fetchrow(TRY_LOCK, key))["got"] is True  # re-entrant: same session
        assert (await other.fetchrow(TRY_LOCK, key))["got"] is False
        assert (await holder.fetchrow(UNLOCK, key))["freed"] is True
        assert (await holder.fetchrow(UNLOCK, key))["freed"] is True
        assert (await other.fetchrow(TRY_LOCK, key))["got"] is True
        assert (await other.fetchrow(UNLOCK, key))["freed"] is True


@needs_postgres  # session locks are PostgreSQL's
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_session_that_fails_leaves_no_lock_behind(engine: AsyncEngine) -> None:
    direct = DirectPool.of(engine)
    key = {"p_key": 7_314_998}
    with pytest.raises(Undecided):
        async with direct.session() as conn:
            assert (await conn.fetchrow(TRY_LOCK, key))["got"] is True
            raise Undecided  # gone before its unlock
    # the pool resets nothing on release (a round trip saved per statement), so that connection
    # had to be closed: on every connection the pool now holds, the lock is free
    async with direct.session() as a, direct.session() as b:
        for conn in (a, b):
            assert (await conn.fetchrow(TRY_LOCK, key))["got"] is True
            assert (await conn.fetchrow(UNLOCK, key))["freed"] is True
