"""Engine factory, per-service databases and the versioned schema migrations applied at start.

SQLite (embedded default) gets WAL and one connection per service: SQLite serialises writers anyway,
and one connection turns "database is locked" races into an orderly queue. PostgreSQL gets a pool and
one database per service, created when missing.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from central.private_files import private_dir, private_file

log = logging.getLogger(__name__)


def service_database_url(
    service: str, *, data_dir: Path, database_url: str | None, override: str | None = None
) -> str:
    """`postgresql+asyncpg://u@h/PREFIX` gives the service `PREFIX_<service>`; no URL gives SQLite."""
    if override:
        return override
    if database_url:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            return database_url
        prefix = url.database or "ticketremaster"
        return url.set(database=f"{prefix}_{service}").render_as_string(hide_password=False)
    private_dir(data_dir)
    return f"sqlite+aiosqlite:///{(data_dir / f'{service}.db').resolve()}"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


_SAFE_DB_NAME = re.compile(r"^[A-Za-z0-9_]+$")


async def ensure_postgres_database(url: str) -> None:
    """Create the service's PostgreSQL database when it does not exist yet."""
    parsed = make_url(url)
    name = parsed.database or ""
    if not _SAFE_DB_NAME.match(name):
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    admin = create_async_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if not exists:
                try:
                    await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                    log.info("created database %s", name)
                except sa.exc.DBAPIError as exc:
                    # Two services starting at once may race to create it; losing is fine.
                    if "already exists" not in str(exc):
                        raise
    finally:
        await admin.dispose()


async def drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_async_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # We issue BEGIN ourselves (below), so the driver must not start transactions on its own.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
    # Take the write lock when the transaction starts, not at its first write: another process
    # on the same file (the admin CLI beside `serve`) then makes us wait (busy_timeout) instead of
    # failing a read-then-write transaction with SQLITE_BUSY. Reads run in autocommit and never
    # come here.
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return  # SQLAlchemy still announces a "begin" for autocommit work: nothing to lock
    conn.exec_driver_sql("BEGIN IMMEDIATE")


async def make_engine(url: str, *, pool_size: int = 8) -> AsyncEngine:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            private_file(Path(database))  # before SQLite creates it with the umask's mode
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    if backend == "postgresql":
        await ensure_postgres_database(url)
        # A steady pool: every overflow connection closed and reopened costs a TCP and TLS
        # negotiation; 5 services x 12 stays well inside PostgreSQL's default 100 connections.
        return create_async_engine(url, pool_size=pool_size, max_overflow=4, pool_pre_ping=False)
    raise ValueError(f"unsupported database URL scheme {backend!r}")


Migration = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Migration


_versions = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)


def create_tables(metadata: sa.MetaData, *names: str) -> Migration:
    """A migration step that creates the named tables (with their indexes) of a metadata."""

    async def apply(conn: AsyncConnection) -> None:
        tables = [metadata.tables[n] for n in names]
        await conn.run_sync(lambda sync: metadata.create_all(sync, tables=tables))

    return apply


async def migrate(engine: AsyncEngine, steps: Sequence[Step]) -> int:
    """Apply every step newer than the database's version, each in its own transaction.

    On PostgreSQL an advisory lock keeps two processes of one service from migrating at once.
    """
    versions = [s.version for s in steps]
    if versions != sorted(set(versions)):
        raise ValueError("migration versions must be unique and ascending")
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_lock(774411)"))
            await conn.commit()
        try:
            await conn.run_sync(lambda sync: _versions.create(sync, checkfirst=True))
            await conn.commit()
            current = await conn.scalar(sa.select(sa.func.max(_versions.c.version))) or 0
            await conn.commit()
            for step in steps:
                if step.version <= current:
                    continue
                async with conn.begin():
                    await step.apply(conn)
                    await conn.execute(
                        _versions.insert().values(
                            version=step.version, description=step.description
                        )
                    )
                log.info("applied migration %s: %s", step.version, step.description)
                current = step.version
        finally:
            if engine.dialect.name == "postgresql":
                await conn.execute(sa.text("SELECT pg_advisory_unlock(774411)"))
                await conn.commit()
    return current


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


_AUTOCOMMIT: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, without BEGIN/COMMIT round trips: for reads and single statements, each of
    which is atomic on its own. Never for work that needs several statements to stand together.
    Made once per engine: building it anew cost ~4 % of a verification's CPU (py-spy)."""
    found = _AUTOCOMMIT.get(engine)
    if found is None:
        found = _AUTOCOMMIT[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


@asynccontextmanager
async def open_database(url: str, steps: Sequence[Step]) -> AsyncIterator[AsyncEngine]:
    """A service's engine with its migrations applied; disposed on the way out."""
    engine = await make_engine(url)
    try:
        await migrate(engine, steps)
        yield engine
    finally:
        # imported here: central.direct_sql builds on this module
        from central.direct_sql import DirectPool

        await DirectPool.close_for(engine)
        await engine.dispose()


# Failures that say "the database cannot be reached now" (a restart, a failover, a dropped link),
# as opposed to a bug or a refused statement: asyncpg's connection and shutdown errors, a socket
# refused or reset, and a pooled connection SQLAlchemy found dead.
_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, cannot connect now
)


def is_outage(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) is the database being unreachable: the caller answers
    "unavailable, try again" (503 / gRPC UNAVAILABLE), not "internal error"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, sa.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__ or getattr(current, "orig", None)
    return False
