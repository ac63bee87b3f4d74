"""The hot path's statements on SQLite, run by the sqlite3 module on the event loop's own thread.

Why: through SQLAlchemy's AsyncEngine over aiosqlite one small statement costs this process about
1.2 ms of CPU (`bench/sql_overhead.py`): the pool checkout, the greenlet hand-over, a trip to
aiosqlite's thread and back, SQLAlchemy's execution context and result. The statement itself, on
a file in WAL mode with `synchronous=NORMAL` (no fsync per commit), takes SQLite a few
microseconds. So the embedded store runs its HotStatements straight on one sqlite3 connection,
in the calling thread: the loop is held only as long as SQLite works, which is shorter than the
hand-over to a thread would be.

Rules that keep that safe:
- One connection per database file and process, shared by every coroutine. A statement runs
  whole between two awaits, so two statements never interleave on it; a transaction, which
  spans awaits, holds `_in_use`, and every statement waits for it.
- The connection never waits inside SQLite (`busy_timeout=0`): when another connection holds
  the file's write lock (this process's engine, or another process such as the admin CLI), the
  statement gives up at once and is tried again after an asyncio sleep that grows from 1 to
  20 ms, for up to BUSY_WAIT_S. That is what SQLite's own busy handler does, without stopping
  the loop.
- Values go in and come out through the same SQLAlchemy type processors the engine applies, so a
  row read here is the row the engine would give (datetimes, JSON, booleans alike).
- Checkpoints stay off the loop. SQLite's automatic checkpoint runs inside the COMMIT that
  pushes the write-ahead log past 1,000 pages: it copies them into the database file and syncs
  it, milliseconds on a fast disk and far more on a slow one. This connection turns that off and,
  every CHECKPOINT_EVERY changes, runs a PASSIVE checkpoint (it never blocks a reader or a
  writer) on a thread with a connection of its own.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

if TYPE_CHECKING:
    from central.direct_sql import HotStatement

T = TypeVar("T")
log = logging.getLogger(__name__)

# Rows changed between two checkpoints: a few pages each, so about SQLite's own 1,000-page mark
CHECKPOINT_EVERY = 500

# As long as the engine's own connections wait for a write lock (central.db: busy_timeout)
BUSY_WAIT_S = 10.0
_FIRST_RETRY_S = 0.001
_LONGEST_RETRY_S = 0.02
_SQLITE_BUSY = 5


class SqliteCompiled:
    """SQL text with ? placeholders, and what turns named parameters into its arguments and its
    rows into mappings, as SQLAlchemy's engine would."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names: list[str] = list(compiled.positiontup or [])
        self.fixed = {
            k: v for k, v in compiled.construct_params(_check=False).items() if v is not None
        }
        processors = compiled._bind_processors
        self.binds: list[Callable[[Any], Any] | None] = [processors.get(n) for n in self.names]
        self.columns: list[tuple[str, Callable[[Any], Any] | None]] = [
            (c.keyname, c.type._cached_result_processor(dialect, None))
            for c in compiled._result_columns
        ]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        fixed = self.fixed
        out = []
        for name, bind in zip(self.names, self.binds, strict=True):
            # a name in neither is a parameter the caller forgot: KeyError, not a silent NULL
            value = params[name] if name in params else fixed[name]
            out.append(bind(value) if bind is not None else value)  # None too, as the engine
        return out

    def rows(self, cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
        columns = self.columns
        return [
            {
                key: (value if proc is None or value is None else proc(value))
                for (key, proc), value in zip(columns, raw, strict=True)
            }
            for raw in cursor.fetchall()
        ]


class SqliteDirect:
    """One sqlite3 connection to an engine's database file, used from the event loop."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self.path, self.dialect = path, dialect
        self._conn: sqlite3.Connection | None = None
        self._in_use = asyncio.Lock()  # held by a transaction or a session
        self._checkpointed_at = 0  # the connection's total_changes at the last checkpoint
        self._checkpointing: asyncio.Future[None] | None = None
        self._checkpointer: sqlite3.Connection | None = None  # used on the thread only

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # isolation_level=None: autocommit; transactions are begun here, explicitly
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # see _after_write
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.close()

    def _after_write(self, conn: sqlite3.Connection) -> None:
        """Start a checkpoint on a thread once enough has been written since the last one."""
        if conn.total_changes - self._checkpointed_at < CHECKPOINT_EVERY:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._checkpointed_at = conn.total_changes
        self._checkpointing = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)

    async def checkpoint_done(self) -> None:
        """Wait for a checkpoint under way, if any."""
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])

    def _checkpoint(self) -> None:
        """On the thread: copy the log's committed pages into the database file."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.warning("SQLite checkpoint of %s failed; the next one will retry", self.path)

    # ----- one statement, autocommit -----

    async def fetch(self, hot: HotStatement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        c = hot.for_sqlite(self.dialect)
        return await self._single(
            c.sql, params, lambda conn: c.rows(conn.execute(c.sql, c.args(params)))
        )

    async def execute(self, hot: HotStatement, params: Mapping[str, Any]) -> int:
        c = hot.for_sqlite(self.dialect)
        return await self._single(c.sql, params, lambda conn: _changed(c, conn, params))

    async def _single(
        self, sql: str, params: Mapping[str, Any], work: Callable[[sqlite3.Connection], T]
    ) -> T:
        result = await _retry_while_busy(
            lambda: _attempt(self._connection(), sql, params, work),
            sql,
            params,
            outside=self._in_use,
        )
        self._after_write(self._connection())
        return result

    # ----- several statements on the connection, no one else's between them -----

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        """BEGIN IMMEDIATE (the write lock taken at the start, as central.db's engine does), then
        COMMIT when the block ends, ROLLBACK when it raises."""
        # `_in_use` is taken together with the write lock, not before it: while another
        # connection holds the write lock, this coroutine lets the connection go between its
        # tries, so reads (which a writer elsewhere does not stop in WAL mode) keep running
        # instead of queueing behind a transaction that has not begun.
        await _retry_while_busy(
            lambda: _attempt(self._connection(), _BEGIN, {}, _begin),
            _BEGIN,
            {},
            holding=self._in_use,
        )
        try:
            conn = self._connection()
            txn = SqliteTransaction(conn, self.dialect)
            try:
                yield txn
                await txn.run("COMMIT", {}, lambda c: c.execute("COMMIT"))
            except BaseException:
                # the caller's exception or a failed COMMIT: nothing of it stays, and the
                # connection goes back with no transaction open on it
                self._undo(conn)
                raise
            self._after_write(conn)
        finally:
            self._in_use.release()

    def _undo(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            # a connection in an unknown state is not reused: the next statement opens another
            log.exception("ROLLBACK failed on %s; closing that connection", self.path)
            if self._conn is conn:
                self._conn = None
            conn.close()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SqliteTransaction]:
        """The connection to itself for a few autocommit statements."""
        async with self._in_use:
            conn = self._connection()
            yield SqliteTransaction(conn, self.dialect)
            self._after_write(conn)


class SqliteTransaction:
    """Statements inside `SqliteDirect.transaction()` or `.session()` (the connection is held)."""

    def __init__(self, conn: sqlite3.Connection, dialect: Dialect) -> None:
        self.conn, self.dialect = conn, dialect

    async def fetch(self, hot: HotStatement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        c = hot.for_sqlite(self.dialect)
        return await self.run(
            c.sql, params, lambda conn: c.rows(conn.execute(c.sql, c.args(params)))
        )

    async def fetchrow(self, hot: HotStatement, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = await self.fetch(hot, params)
        return rows[0] if rows else None

    async def execute(self, hot: HotStatement, params: Mapping[str, Any]) -> int:
        c = hot.for_sqlite(self.dialect)
        return await self.run(c.sql, params, lambda conn: _changed(c, conn, params))

    async def run(
        self, sql: str, params: Mapping[str, Any], work: Callable[[sqlite3.Connection], T]
    ) -> T:
        return await _retry_while_busy(lambda: _attempt(self.conn, sql, params, work), sql, params)


async def _retry_while_busy(
    attempt: Callable[[], tuple[bool, T | None]],
    sql: str,
    params: Mapping[str, Any],
    outside: asyncio.Lock | None = None,
    holding: asyncio.Lock | None = None,
) -> T:
    """Run `attempt` until it is done: while another connection holds the write lock, pause
    (1 ms, doubling to 20 ms) on the loop and try again, up to BUSY_WAIT_S of pauses in all.
    `outside`: the lock a transaction or session holds on this connection; while it is held,
    each attempt waits for it (a statement of its own never runs inside another's transaction).
    `holding`: each attempt is made holding this lock, which stays held when the attempt is done
    (the caller releases it) and is let go for the pause when it is not."""
    waited, delay = 0.0, _FIRST_RETRY_S
    while True:
        if holding is not None:
            await holding.acquire()
            try:
                done, result = attempt()
            except BaseException:
                holding.release()
                raise
            if not done:
                holding.release()
        elif outside is not None and outside.locked():
            async with outside:
                done, result = attempt()
        else:
            done, result = attempt()
        if done:
            return result  # type: ignore[return-value]
        if waited >= BUSY_WAIT_S:
            raise _locked_too_long(sql, params)
        await _pause(delay)
        waited += delay
        delay = min(delay * 2, _LONGEST_RETRY_S)


# the retries' pause; the tests put one here that takes no time
_pause = asyncio.sleep

_BEGIN = "BEGIN IMMEDIATE"  # the write lock taken at the start, as central.db's engine does


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute(_BEGIN)


def _changed(c: SqliteCompiled, conn: sqlite3.Connection, params: Mapping[str, Any]) -> int:
    cursor = conn.execute(c.sql, c.args(params))
    if c.columns:  # RETURNING: the statement is done only when its rows are read
        return len(cursor.fetchall())
    return cursor.rowcount


def _attempt(
    conn: sqlite3.Connection,
    sql: str,
    params: Mapping[str, Any],
    work: Callable[[sqlite3.Connection], T],
) -> tuple[bool, T | None]:
    """(True, result), or (False, None) when another connection holds the write lock. Any other
    error comes back as SQLAlchemy's, the driver's own as `orig`, as the engine raises it."""
    try:
        return True, work(conn)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == _SQLITE_BUSY:
            return False, None
        raise sa.exc.OperationalError(sql, dict(params), exc) from exc
    except sqlite3.IntegrityError as exc:
        raise sa.exc.IntegrityError(sql, dict(params), exc) from exc
    except sqlite3.Error as exc:
        raise sa.exc.DatabaseError(sql, dict(params), exc) from exc


def _locked_too_long(sql: str, params: Mapping[str, Any]) -> sa.exc.OperationalError:
    return sa.exc.OperationalError(
        sql, dict(params), sqlite3.OperationalError("database is locked")
    )
