"""SQLite's hot statements on their own sqlite3 connection, run on the event loop
(central/direct_sqlite.py): the rows are the engine's rows value for value, a write that meets
another connection's write lock waits for it without stopping the loop (and without stopping reads),
a statement never slips
into a transaction that another coroutine holds open, and a lock held too long is an error that
changes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central import direct_sqlite
from central.db import make_engine
from central.direct_sql import DirectPool, HotStatement

metadata = sa.MetaData()
notes = sa.Table(
    "notes",
    metadata,
    sa.Column("note_id", sa.String(36), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("body", sa.JSON, nullable=True),
    sa.Column("done", sa.Boolean, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)
ADD = HotStatement(notes.insert())
BY_ID = HotStatement(sa.select(notes).where(notes.c.note_id == sa.bindparam("p_id")))
BEFORE = HotStatement(
    sa.select(notes.c.note_id).where(notes.c.at < sa.bindparam("p_at")).order_by(notes.c.note_id)
)
GROW = HotStatement(
    notes.update()
    .where(notes.c.note_id == sa.bindparam("p_id"))
    .values(size=notes.c.size + 1)
    .returning(notes.c.size, notes.c.done)
)


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    engine = await make_engine(f"sqlite+aiosqlite:///{tmp_path / 'notes.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await DirectPool.close_for(engine)
    await engine.dispose()


def note(note_id: str, **values: Any) -> dict[str, Any]:
    return {"note_id": note_id, "at": None, "body": None, "done": False, "size": 1, **values}


async def test_rows_are_the_engines_value_for_value(engine: AsyncEngine) -> None:
    at = datetime(2026, 12, 1, 9, 30, 0, 0, tzinfo=UTC)  # zero microseconds: a format edge
    body = {"seats": ["A-1", "A-2"], "paid": True, "n": 2}
    direct = DirectPool.of(engine)
    await direct.execute(ADD, note("direct", at=at, body=body, done=True, size=2**40))
    async with engine.begin() as conn:
        await conn.execute(notes.insert(), note("engine", at=at, body=body, done=True, size=2**40))
    # each way reads both rows, and the four readings agree
    readings = []
    for note_id in ("direct", "engine"):
        readings.append(dict(await direct.fetchrow(BY_ID, {"p_id": note_id}) or {}))
        async with engine.connect() as conn:
            found = (await conn.execute(BY_ID.statement, {"p_id": note_id})).mappings().one()
        readings.append(dict(found))
    for reading in readings:
        assert {k: v for k, v in reading.items() if k != "note_id"} == {
            k: v for k, v in readings[1].items() if k != "note_id"
        }
    assert readings[0]["body"] == body and readings[0]["done"] is True
    assert readings[0]["size"] == 2**40
    # a datetime written here compares with one written by the engine: the same text format
    later = datetime(2026, 12, 1, 9, 30, 0, 1, tzinfo=UTC)
    assert [r["note_id"] for r in await direct.fetch(BEFORE, {"p_at": later})] == [
        "direct",
        "engine",
    ]
    assert await direct.fetch(BEFORE, {"p_at": at}) == []
    # a None goes through the type too, as the engine sends it (JSON's None is stored as 'null')
    await direct.execute(ADD, note("direct-none"))
    async with engine.begin() as conn:
        await conn.execute(notes.insert(), note("engine-none"))
    async with engine.connect() as conn:
        stored = (
            await conn.exec_driver_sql(
                "SELECT note_id, body, at FROM notes WHERE note_id LIKE '%-none' ORDER BY note_id"
            )
        ).all()
    assert [tuple(r)[1:] for r in stored] == [("null", None), ("null", None)]
    # RETURNING answers processed rows; execute() counts them
    assert await direct.fetch(GROW, {"p_id": "engine"}) == [{"size": 2**40 + 1, "done": True}]
    assert await direct.execute(GROW, {"p_id": "nobody"}) == 0


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The busy retries' pauses, recorded; each hands the loop to others without time passing."""
    taken: list[float] = []

    async def pause(seconds: float) -> None:
        taken.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(direct_sqlite, "_pause", pause)
    return taken


async def others_run() -> None:
    """Let every other ready task take its turn (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_write_waits_for_another_connections_lock_and_the_loop_runs_on(
    engine: AsyncEngine, tmp_path: Path, pauses: list[float]
) -> None:
    direct = DirectPool.of(engine)
    await direct.execute(ADD, note("a"))
    other = sqlite3.connect(tmp_path / "notes.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the file's write lock
    other.execute("UPDATE notes SET size = 100 WHERE note_id = 'a'")
    write = asyncio.create_task(direct.fetch(GROW, {"p_id": "a"}))
    await others_run()  # this coroutine runs while the write waits: the loop is free
    assert not write.done()  # waiting for the lock...
    assert pauses[:6] == [0.001, 0.002, 0.004, 0.008, 0.016, 0.02]  # ...in pauses that grow
    other.execute("COMMIT")
    # it lands after the other writer's commit, on top of it
    assert await write == [{"size": 101, "done": False}]
    other.close()


async def test_reads_go_on_while_a_transaction_waits_for_another_connections_lock(
    engine: AsyncEngine, tmp_path: Path, pauses: list[float]
) -> None:
    """A transaction that has not begun (another connection holds the write lock) does not keep
    the connection from everyone else: in WAL mode that writer never stops a read, so reads on
    the direct connection go on and only the transaction waits."""
    direct = DirectPool.of(engine)
    await direct.execute(ADD, note("a"))
    other = sqlite3.connect(tmp_path / "notes.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE notes SET size = 100 WHERE note_id = 'a'")

    async def add_b() -> None:
        async with direct.transaction() as txn:
            await txn.execute(ADD, note("b"))

    waiting = asyncio.create_task(add_b())
    await others_run()
    assert not waiting.done() and pauses  # it is trying for the write lock
    read = asyncio.create_task(direct.fetchrow(BY_ID, {"p_id": "a"}))
    await others_run()
    assert read.done(), "a read queued behind a transaction that never began"
    assert (read.result() or {})["size"] == 1  # the other writer's change is not committed
    assert not waiting.done()
    other.execute("COMMIT")
    other.close()
    await waiting
    assert (await direct.fetchrow(BY_ID, {"p_id": "b"}) or {})["note_id"] == "b"
    assert (await direct.fetchrow(BY_ID, {"p_id": "a"}) or {})["size"] == 100


async def test_a_statement_never_joins_a_transaction_held_open_by_another_coroutine(
    engine: AsyncEngine,
) -> None:
    direct = DirectPool.of(engine)
    inside = asyncio.Event()
    go_on = asyncio.Event()

    async def undone_transaction() -> None:
        async with direct.transaction() as txn:
            await txn.execute(ADD, note("undone"))
            inside.set()
            await go_on.wait()  # the transaction is open across this await
            raise RuntimeError("decided against it")

    holder = asyncio.create_task(undone_transaction())
    await inside.wait()
    single = asyncio.create_task(direct.execute(ADD, note("kept")))
    await others_run()
    assert not single.done()  # it waits for the transaction rather than running inside it
    go_on.set()
    with pytest.raises(RuntimeError):
        await holder
    assert await single == 1
    assert await direct.fetchrow(BY_ID, {"p_id": "undone"}) is None
    assert (await direct.fetchrow(BY_ID, {"p_id": "kept"}) or {})["note_id"] == "kept"


async def test_a_lock_held_too_long_is_an_error_that_changes_nothing(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pauses: list[float]
) -> None:
    monkeypatch.setattr(direct_sqlite, "BUSY_WAIT_S", 0.1)
    direct = DirectPool.of(engine)
    await direct.execute(ADD, note("a"))
    other = sqlite3.connect(tmp_path / "notes.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            await direct.execute(GROW, {"p_id": "a"})
        assert 0.1 <= sum(pauses) < 0.1 + 0.02  # it waited out BUSY_WAIT_S, and no longer
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            async with direct.transaction() as txn:
                await txn.execute(ADD, note("b"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await direct.fetchrow(BY_ID, {"p_id": "a"}) or {})["size"] == 1
    assert await direct.fetchrow(BY_ID, {"p_id": "b"}) is None
    # and the connection is fine afterwards
    assert await direct.fetch(GROW, {"p_id": "a"}) == [{"size": 2, "done": False}]


async def test_errors_are_sqlalchemys_and_a_failed_transaction_leaves_nothing(
    engine: AsyncEngine,
) -> None:
    direct = DirectPool.of(engine)
    await direct.execute(ADD, note("a"))
    with pytest.raises(sa.exc.IntegrityError):
        await direct.execute(ADD, note("a"))
    with pytest.raises(sa.exc.IntegrityError):
        async with direct.transaction() as txn:
            await txn.execute(ADD, note("b"))
            await txn.execute(ADD, note("a"))  # a duplicate: the whole transaction is undone
    assert await direct.fetchrow(BY_ID, {"p_id": "b"}) is None
    with pytest.raises(KeyError):  # a forgotten parameter is never sent as NULL
        await direct.fetch(BY_ID, {})


async def test_checkpoints_run_off_the_loop_and_keep_the_log_short(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct connection never checkpoints inside its own COMMIT (that would hold up the
    loop); a checkpoint on a thread copies the log into the database file instead."""
    monkeypatch.setattr(direct_sqlite, "CHECKPOINT_EVERY", 50)
    direct = DirectPool.of(engine)
    await direct.execute(ADD, note("first"))
    sqlite = direct._sqlite
    assert sqlite is not None
    conn = sqlite._connection()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    database = tmp_path / "notes.db"
    size_before = database.stat().st_size
    # Two batches, each past the mark, each waited for: a checkpoint asked for while the last one
    # still runs is left to the next write after it, and on a loaded machine that can be after
    # the last write of a single batch.
    for batch in range(2):
        for i in range(60):
            await direct.execute(ADD, note(f"n{batch}-{i}", body={"text": "x" * 2000}))
        await sqlite.checkpoint_done()
    # ~240 KB of rows went through the log, at least 100 of them checkpointed: the database
    # file now holds them
    assert database.stat().st_size > size_before + 200_000
    assert sqlite._checkpointer is not None  # done by the thread's own connection


async def test_a_failed_commit_leaves_no_transaction_open_for_the_next_statement(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A COMMIT that fails (here: a deferred foreign-key-like check, a constraint SQLite checks
    only at COMMIT) is rolled back, so the statements after it are not inside it."""
    direct = DirectPool.of(engine)
    sqlite = direct._sqlite
    assert sqlite is not None
    conn = sqlite._connection()
    conn.execute("CREATE TABLE parents (id TEXT PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE children (id TEXT PRIMARY KEY, parent TEXT "
        "REFERENCES parents(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    orphan = HotStatement(
        sa.text("INSERT INTO children (id, parent) VALUES ('c', 'nobody')")  # type: ignore[arg-type]
    )
    with pytest.raises(sa.exc.IntegrityError):
        async with direct.transaction() as txn:
            await txn.execute(ADD, note("with-the-orphan"))
            await txn.execute(orphan, {})
    assert not conn.in_transaction
    assert await direct.fetchrow(BY_ID, {"p_id": "with-the-orphan"}) is None
    await direct.execute(ADD, note("after"))  # autocommit: stays whatever comes next
    assert (await direct.fetchrow(BY_ID, {"p_id": "after"}) or {})["note_id"] == "after"
