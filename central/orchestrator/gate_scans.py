"""The first answer to every gate scan id, in the orchestrator's own database: a gate that repeats
a scan id (a retry after a lost answer, or an offline upload sent twice) gets that answer back and
nothing runs again."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import Step, autocommit, create_tables
from central.direct_sql import DirectPool, HotStatement
from central.errors import ApiError

metadata = sa.MetaData()

gate_scans = sa.Table(
    "gate_scans",
    metadata,
    sa.Column("gate_id", sa.String(36), primary_key=True),
    sa.Column("scan_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # online | upload
    sa.Column("answer", sa.Text, nullable=False),  # the JSON the gate was given
    sa.Column("created_at", sa.Float, nullable=False),
)

# On the scan path: built once, run without SQLAlchemy's execution layer (central/direct_sql.py)
ANSWER_OF = HotStatement(
    sa.select(gate_scans.c.answer).where(
        gate_scans.c.gate_id == sa.bindparam("p_gate_id"),
        gate_scans.c.scan_id == sa.bindparam("p_scan_id"),
    )
)
STORE = HotStatement(gate_scans.insert())

# Versions far above the saga log's own steps: both lists share one schema_migrations table.
STEPS = [Step(101, "gate scan answers", create_tables(metadata, "gate_scans"))]


class GateScanStore:
    def __init__(self, engine: AsyncEngine) -> None:
        # One statement at a time, each atomic alone: no BEGIN/COMMIT round trips on the scan path.
        self.engine = autocommit(engine)
        self.direct = DirectPool.of(engine)

    async def get(self, gate_id: str, scan_id: str) -> dict[str, Any] | None:
        try:
            return await self._get(gate_id, scan_id)
        except DBAPIError as exc:  # e.g. no connection to be had: the gate decides offline
            raise ApiError("SERVICE_UNAVAILABLE", "scan store unavailable") from exc

    async def _get(self, gate_id: str, scan_id: str) -> dict[str, Any] | None:
        row = await self.direct.fetchrow(ANSWER_OF, {"p_gate_id": gate_id, "p_scan_id": scan_id})
        return None if row is None else dict(json.loads(row["answer"]))

    async def put(
        self, gate_id: str, scan_id: str, kind: str, answer: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the answer unless one is stored already; answers the one that stands."""
        row = {
            "gate_id": gate_id,
            "scan_id": scan_id,
            "kind": kind,
            "answer": json.dumps(answer, separators=(",", ":")),
            "created_at": time.time(),
        }
        try:
            await self.direct.execute(STORE, row)
        except IntegrityError:
            first = await self.get(gate_id, scan_id)
            if first is not None:
                return first
        except DBAPIError as exc:
            raise ApiError("SERVICE_UNAVAILABLE", "scan store unavailable") from exc
        return answer

    async def replace(self, gate_id: str, scan_id: str, kind: str, answer: dict[str, Any]) -> None:
        """The stored answer overruled (a check-in the gate's own decision undid)."""
        stmt = (
            gate_scans.update()
            .where(gate_scans.c.gate_id == gate_id, gate_scans.c.scan_id == scan_id)
            .values(kind=kind, answer=json.dumps(answer, separators=(",", ":")))
        )
        try:
            async with self.engine.connect() as conn:
                await conn.execute(stmt)
        except DBAPIError as exc:
            raise ApiError("SERVICE_UNAVAILABLE", "scan store unavailable") from exc
