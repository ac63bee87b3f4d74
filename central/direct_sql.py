"""The hot path's statements run straight on the database driver.

Why: py-spy on the verification load showed about half of the one event loop's time inside
SQLAlchemy's async execution path — the pool checkout (with its isolation-level switch and reset),
the greenlet hand-over, the execution context and the result metadata — not in PostgreSQL or the
driver. `bench/sql_overhead.py` prints it: the same one-row SELECT costs ~0.5–0.8 ms of this
process's CPU through an AsyncEngine and ~0.15 ms on an asyncpg pool.

So the statements on the scan and purchase hot paths are still written in SQLAlchemy Core (one
schema, one query builder, both dialects), built once with named bind parameters, compiled once
per dialect, and on PostgreSQL executed on a small asyncpg pool of their own. On SQLite (the
embedded default) they run on one sqlite3 connection per file on the event loop's thread
(central/direct_sqlite.py: ~1.2 ms of CPU through the engine, ~0.01 ms there). Driver errors come
back as SQLAlchemy's (IntegrityError, DBAPIError with the driver's error as `orig`), so callers'
error handling and `central.db.is_outage` see no difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.db import autocommit
from central.direct_sqlite import SqliteCompiled, SqliteDirect

# Each service process opens at most this many extra connections; with the engine's own pool
# (8 + 4) five services stay inside PostgreSQL's default 100 connections.
POOL_MAX = 4
# asyncpg's Record or SQLAlchemy's RowMapping: both read a column as row["name"]
Row = Any
Statement = sa.Select[Any] | sa.CompoundSelect[Any] | sa.Insert | sa.Update | sa.Delete


class HotStatement:
    """One Core statement with named bind parameters, compiled once per dialect. Parameter names
    must differ from the column names the statement sets (SQLAlchemy names those binds after
    the column). Values written into the statement itself (`status == "SOLD"`) become fixed
    parameters of the compiled form."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._compiled: dict[str, Compiled] = {}
        self._sqlite: SqliteCompiled | None = None

    def for_driver(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            if "POSTCOMPILE" in str(compiled):
                # an IN list is expanded per execution: no one text to prepare
                raise ValueError("a HotStatement cannot hold an IN list; use OR of equalities")
            defaults = compiled.construct_params(_check=False)
            found = Compiled(
                str(compiled),
                list(compiled.positiontup or []),
                {k: v for k, v in defaults.items() if v is not None},
            )
            self._compiled[dialect.name] = found
        return found

    def for_sqlite(self, dialect: Dialect) -> SqliteCompiled:
        found = self._sqlite
        if found is None:
            found = self._sqlite = SqliteCompiled(self.statement, dialect)
        return found


class Compiled:
    """SQL text with $n placeholders, the parameter names in $n order, the fixed values."""

    def __init__(self, sql: str, names: list[str], fixed: dict[str, Any]) -> None:
        self.sql, self.names, self.fixed = sql, names, fixed

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        fixed = self.fixed
        # a name in neither is a parameter the caller forgot: KeyError, not a silent NULL
        return [params[n] if n in params else fixed[n] for n in self.names]


class DirectPool:
    """The engine's database, reached without SQLAlchemy's execution layer (PostgreSQL), or the
    engine itself (SQLite). One per engine: `DirectPool.of(engine)`."""

    _pools: weakref.WeakKeyDictionary[AsyncEngine, DirectPool] = weakref.WeakKeyDictionary()

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.direct = engine.dialect.name == "postgresql"
        self._pool: asyncpg.Pool | None = None
        # SQLite on a file: its own connection on the event loop (central/direct_sqlite.py);
        # an in-memory database is the engine's connection alone, so that stays on the engine
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._sqlite = (
            SqliteDirect(database, engine.dialect) if database and database != ":memory:" else None
        )
        self._opening = asyncio.Lock()

    @classmethod
    def of(cls, engine: AsyncEngine) -> DirectPool:
        found = cls._pools.get(engine)
        if found is None:
            found = cls._pools[engine] = cls(engine)
        return found

    @classmethod
    async def close_for(cls, engine: AsyncEngine) -> None:
        """Close the engine's driver pool (call beside `engine.dispose()`)."""
        found = cls._pools.pop(engine, None)
        if found is not None:
            await found.close()

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _driver_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    dsn = self.engine.url.set(drivername="postgresql")
                    self._pool = await asyncpg.create_pool(
                        dsn.render_as_string(hide_password=False),
                        min_size=0,
                        max_size=POOL_MAX,
                        reset=_nothing_to_reset,
                    )
        return self._pool

    # ----- one statement, autocommit -----

    async def fetch(self, hot: HotStatement, params: Mapping[str, Any]) -> list[Row]:
        """The statement's rows as mappings (a statement of its own: autocommit)."""
        if self._sqlite is not None:
            return await self._sqlite.fetch(hot, params)
        if not self.direct:
            async with autocommit(self.engine).connect() as conn:
                return await _EngineTransaction(conn).fetch(hot, params)
        c = hot.for_driver(self.engine.dialect)
        async with _as_sqlalchemy_errors(c.sql, params):
            pool = await self._driver_pool()
            return list(await pool.fetch(c.sql, *c.args(params)))

    async def fetchrow(self, hot: HotStatement, params: Mapping[str, Any]) -> Row | None:
        rows = await self.fetch(hot, params)
        return rows[0] if rows else None

    async def execute(self, hot: HotStatement, params: Mapping[str, Any]) -> int:
        """Run a statement that answers no rows; how many rows it changed."""
        if self._sqlite is not None:
            return await self._sqlite.execute(hot, params)
        if not self.direct:
            async with autocommit(self.engine).connect() as conn:
                return await _EngineTransaction(conn).execute(hot, params)
        c = hot.for_driver(self.engine.dialect)
        async with _as_sqlalchemy_errors(c.sql, params):
            pool = await self._driver_pool()
            status = await pool.execute(c.sql, *c.args(params))
        return _rowcount(status)

    # ----- several statements that stand or fall together -----

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction (READ COMMITTED on PostgreSQL, as the engine's): committed when the
        block ends, rolled back when it raises — the caller's own exception included, which is
        how a caller undoes what it wrote after deciding against it."""
        if self._sqlite is not None:
            async with self._sqlite.transaction() as sqlite_txn:
                yield sqlite_txn
            return
        if not self.direct:
            async with self.engine.begin() as conn:
                yield _EngineTransaction(conn)
            return
        pool = await self._driver_pool()
        async with _as_sqlalchemy_errors("BEGIN", {}):
            conn = await pool.acquire()
        try:
            txn = conn.transaction()
            async with _as_sqlalchemy_errors("BEGIN", {}):
                await txn.start()
            try:
                yield _DriverTransaction(conn, self.engine.dialect)
            except BaseException:
                with contextlib.suppress(Exception):
                    await txn.rollback()
                raise
            async with _as_sqlalchemy_errors("COMMIT", {}):
                await txn.commit()
        finally:
            await pool.release(conn)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Transaction]:
        """One connection for a few statements, each its own autocommit transaction: for a
        session-level advisory lock taken before a statement and released after it."""
        if self._sqlite is not None:
            async with self._sqlite.session() as sqlite_session:
                yield sqlite_session
            return
        if not self.direct:
            async with autocommit(self.engine).connect() as conn:
                yield _EngineTransaction(conn)
            return
        pool = await self._driver_pool()
        async with _as_sqlalchemy_errors("connect", {}):
            conn = await pool.acquire()
        ended_well = False
        try:
            yield _DriverTransaction(conn, self.engine.dialect)
            ended_well = True
        finally:
            if not ended_well:
                # A caller that failed or was cancelled may have left a session lock behind, and
                # the pool no longer resets connections: this one is closed, not reused.
                conn.terminate()
            await pool.release(conn)


class Transaction(Protocol):
    """Statements inside `DirectPool.transaction()`: the same calls as the pool's own."""

    async def fetch(self, hot: HotStatement, params: Mapping[str, Any]) -> list[Row]: ...

    async def fetchrow(self, hot: HotStatement, params: Mapping[str, Any]) -> Row | None: ...

    async def execute(self, hot: HotStatement, params: Mapping[str, Any]) -> int: ...


def in_engine_transaction(conn: AsyncConnection) -> Transaction:
    """Hot statements inside a transaction the caller began on the engine (any dialect): they
    run through SQLAlchemy on `conn` and stand or fall with the rest of that transaction."""
    return _EngineTransaction(conn)


class _EngineTransaction:
    """SQLite (and the autocommit single statements): the engine's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def fetch(self, hot: HotStatement, params: Mapping[str, Any]) -> list[Row]:
        return list((await self.conn.execute(hot.statement, dict(params))).mappings().all())

    async def fetchrow(self, hot: HotStatement, params: Mapping[str, Any]) -> Row | None:
        return (await self.conn.execute(hot.statement, dict(params))).mappings().first()

    async def execute(self, hot: HotStatement, params: Mapping[str, Any]) -> int:
        return int((await self.conn.execute(hot.statement, dict(params))).rowcount or 0)


class _DriverTransaction:
    """PostgreSQL: one asyncpg connection (inside a transaction, or a session's)."""

    def __init__(self, conn: asyncpg.Connection, dialect: Dialect) -> None:
        self.conn, self.dialect = conn, dialect

    async def fetch(self, hot: HotStatement, params: Mapping[str, Any]) -> list[Row]:
        c = hot.for_driver(self.dialect)
        async with _as_sqlalchemy_errors(c.sql, params):
            return list(await self.conn.fetch(c.sql, *c.args(params)))

    async def fetchrow(self, hot: HotStatement, params: Mapping[str, Any]) -> Row | None:
        rows = await self.fetch(hot, params)
        return rows[0] if rows else None

    async def execute(self, hot: HotStatement, params: Mapping[str, Any]) -> int:
        c = hot.for_driver(self.dialect)
        async with _as_sqlalchemy_errors(c.sql, params):
            return _rowcount(await self.conn.execute(c.sql, *c.args(params)))


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """asyncpg's default reset on release (unlock all advisory locks, CLOSE ALL, UNLISTEN *,
    RESET ALL) is a round trip after every statement, paid before `pool.fetch` returns. Nothing
    here leaves that state behind: single statements and transactions set no session state (an
    open transaction is still rolled back by asyncpg itself), and `session()` closes a connection
    whose caller did not end cleanly instead of returning it."""


_DEAD_CONNECTION = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,
)


def _rowcount(status: str) -> int:
    """asyncpg's command status ("INSERT 0 1", "UPDATE 3", "DELETE 0") -> the row count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


@asynccontextmanager
async def _as_sqlalchemy_errors(sql: str, params: Mapping[str, Any]) -> AsyncIterator[None]:
    """The driver's errors as SQLAlchemy's, the driver's own kept as `orig`: callers catch
    IntegrityError / DBAPIError as they do for the engine, and is_outage() still finds a
    connection error underneath."""
    try:
        yield
    except TimeoutError:
        raise  # the caller's deadline, not the database's answer
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise sa.exc.IntegrityError(sql, dict(params), exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        dead = isinstance(exc, _DEAD_CONNECTION)
        raise sa.exc.OperationalError(sql, dict(params), exc, connection_invalidated=dead) from exc
