"""The gate's durable memory: every scan, its own admissions, what waits for upload, the last
manifest and staff sessions, in one SQLite file (WAL, synchronous=FULL).

One thread owns the connection (SQLite objects must not cross threads, and a single writer
never waits on a lock); callers hand it work and wait for the commit. record_scan() returns only
once the row is on disk, so the relay may pulse after it and a power cut never loses an entry.
Threads call the plain methods (they block until the owner thread answers); the event loop awaits
the *_async ones, which hand back the owner thread's future without tying up another thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    scan_id     TEXT PRIMARY KEY,
    at          REAL NOT NULL,      -- central's time of the scan (unix s)
    qr_payload  TEXT NOT NULL,
    result      TEXT NOT NULL,
    mode        TEXT NOT NULL,      -- online | offline
    local       INTEGER NOT NULL DEFAULT 0,
    message     TEXT,
    seat_id     TEXT,
    seat_row    TEXT,
    seat_number INTEGER,
    latency_ms  REAL,
    pending     INTEGER NOT NULL,   -- 1: central has not acknowledged it yet
    outcome     TEXT,               -- central's answer to the upload
    central_result TEXT,
    uploaded_at REAL
);
CREATE INDEX IF NOT EXISTS scans_pending ON scans(pending, at) WHERE pending = 1;
CREATE INDEX IF NOT EXISTS scans_at ON scans(at);
CREATE TABLE IF NOT EXISTS admissions (
    seat_id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL,
    at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (token_hash TEXT PRIMARY KEY, expires_at REAL NOT NULL);
"""


@dataclass
class ScanRecord:
    scan_id: str
    at: float
    qr_payload: str
    result: str
    mode: str
    message: str = ""
    local: bool = False
    seat: dict[str, Any] | None = None
    latency_ms: float | None = None
    pending: bool = False
    outcome: str | None = None
    # frame captured -> light/relay told, disk commit included (set by the decider; not stored)
    verdict_ms: float | None = None

    @property
    def admitted(self) -> bool:
        return self.result == "SUCCESS"

    def public(self) -> dict[str, Any]:
        """The dashboard's shape (api-contract "Commands": GET /api/scans)."""
        return {
            "scan_id": self.scan_id,
            "at": _iso(self.at),
            "result": self.result,
            "mode": self.mode,
            "local": self.local,
            "message": self.message,
            "seat": self.seat,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "uploaded": not self.pending,
            "outcome": self.outcome,
        }


def _iso(instant: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(instant))
        + f".{int(instant % 1 * 1000):03d}Z"
    )


_STOP = object()


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.on_pending: Callable[[], None] | None = None  # wakes the uploader

    # ----- the owner thread -----

    def start(self) -> None:
        _private(self.path)
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="outbox", daemon=True)
        self._thread.start()
        ready.result()

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit returns only after the WAL is fsynced — the admission survives power loss
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
            self._conn = conn
        except Exception as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        while True:
            job = self._jobs.get()
            if job is _STOP:
                conn.close()
                return
            fn, args, fut = job
            try:
                fut.set_result(fn(conn, *args))
            except BaseException as exc:  # handed to the caller, never kills the owner thread
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                fut.set_exception(exc)

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("outbox is not running")
        fut: Future[T] = Future()
        self._jobs.put((fn, args, fut))
        return fut

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._submit(fn, *args).result()

    async def _await(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._submit(fn, *args))

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join(timeout=10)

    # ----- scans -----

    def record_scan(self, scan: ScanRecord) -> None:
        """Durable before it returns (the caller pulses the relay afterwards)."""
        self._call(_record_scan, scan)
        if scan.pending and self.on_pending is not None:
            self.on_pending()

    def pending(self, limit: int = 100) -> list[ScanRecord]:
        return self._call(_select, "WHERE pending = 1 ORDER BY at LIMIT ?", (limit,))

    def recent(self, limit: int = 50) -> list[ScanRecord]:
        return self._call(_select, "ORDER BY at DESC LIMIT ?", (limit,))

    async def recent_async(self, limit: int = 50) -> list[ScanRecord]:
        return await self._await(_select, "ORDER BY at DESC LIMIT ?", (limit,))

    def mark_uploaded(self, outcomes: list[tuple[str, str, str | None]]) -> None:
        """(scan_id, outcome, central's result) for items central acknowledged."""
        self._call(_mark_uploaded, outcomes, time.time())

    def admissions(self) -> set[str]:
        return self._call(lambda c: {r[0] for r in c.execute("SELECT seat_id FROM admissions")})

    def counts(self) -> dict[str, Any]:
        return self._call(_counts)

    async def counts_async(self) -> dict[str, Any]:
        return await self._await(_counts)

    # ----- meta, manifest, sessions -----

    def get_meta(self, key: str) -> Any:
        row = self._call(
            lambda c: c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        )
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._call(
            lambda c: c.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
        )

    def add_session(self, token_hash: str, expires_at: float) -> None:
        self._call(_add_session, token_hash, expires_at)

    async def add_session_async(self, token_hash: str, expires_at: float) -> None:
        await self._await(_add_session, token_hash, expires_at)

    def remove_session(self, token_hash: str) -> None:
        self._call(lambda c: c.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,)))

    def session_valid(self, token_hash: str, now: float) -> bool:
        return self._call(_session_valid, token_hash, now)

    async def session_valid_async(self, token_hash: str, now: float) -> bool:
        return await self._await(_session_valid, token_hash, now)


def _add_session(conn: sqlite3.Connection, token_hash: str, expires_at: float) -> None:
    conn.execute("INSERT OR REPLACE INTO sessions VALUES(?, ?)", (token_hash, expires_at))


def _session_valid(conn: sqlite3.Connection, token_hash: str, now: float) -> bool:
    row = conn.execute(
        "SELECT expires_at FROM sessions WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return row is not None and bool(row[0] > now)


def _private(path: Path) -> None:
    """The outbox holds staff sessions and every admission: its folder 0700 and its files 0600
    for the gate's own user, whatever the umask (an older install made them 0755/0644)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, stat.S_IMODE(path.parent.stat().st_mode) & 0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            os.chmod(file, stat.S_IMODE(file.stat().st_mode) & 0o600)


def _record_scan(conn: sqlite3.Connection, s: ScanRecord) -> None:
    seat = s.seat or {}
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT OR IGNORE INTO scans(scan_id, at, qr_payload, result, mode, local, message,"
        " seat_id, seat_row, seat_number, latency_ms, pending)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            s.scan_id,
            s.at,
            s.qr_payload,
            s.result,
            s.mode,
            int(s.local),
            s.message,
            seat.get("seat_id"),
            None if seat.get("row") is None else str(seat.get("row")),
            seat.get("number"),
            s.latency_ms,
            int(s.pending),
        ),
    )
    if s.admitted and seat.get("seat_id"):
        conn.execute(
            "INSERT OR IGNORE INTO admissions VALUES(?, ?, ?)", (seat["seat_id"], s.scan_id, s.at)
        )
    conn.execute("COMMIT")


def _mark_uploaded(
    conn: sqlite3.Connection, outcomes: list[tuple[str, str, str | None]], now: float
) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "UPDATE scans SET pending = 0, outcome = ?, central_result = ?, uploaded_at = ?"
        " WHERE scan_id = ?",
        [(outcome, result, now, scan_id) for scan_id, outcome, result in outcomes],
    )
    conn.execute("COMMIT")


_COLUMNS = (
    "scan_id, at, qr_payload, result, mode, local, message, seat_id, seat_row, seat_number,"
    " latency_ms, pending, outcome"
)


def _select(conn: sqlite3.Connection, tail: str, params: tuple[Any, ...]) -> list[ScanRecord]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM scans {tail}", params).fetchall()
    out = []
    for r in rows:
        seat = {"seat_id": r[7], "row": r[8], "number": r[9]} if r[7] is not None else None
        out.append(
            ScanRecord(
                scan_id=r[0],
                at=r[1],
                qr_payload=r[2],
                result=r[3],
                mode=r[4],
                local=bool(r[5]),
                message=r[6] or "",
                seat=seat,
                latency_ms=r[10],
                pending=bool(r[11]),
                outcome=r[12],
            )
        )
    return out


def _counts(conn: sqlite3.Connection) -> dict[str, Any]:
    by_result = dict(conn.execute("SELECT result, count(*) FROM scans GROUP BY result").fetchall())
    (backlog,) = conn.execute("SELECT count(*) FROM scans WHERE pending = 1").fetchone()
    (total,) = conn.execute("SELECT count(*) FROM scans").fetchone()
    (admitted,) = conn.execute("SELECT count(*) FROM admissions").fetchone()
    conflicts = conn.execute("SELECT count(*) FROM scans WHERE outcome = 'CONFLICT'").fetchone()[0]
    return {
        "scans": total,
        "admitted": admitted,
        "backlog": backlog,
        "conflicts": conflicts,
        "by_result": by_result,
    }
