"""Short codes issued with each QR (proto/short_code.py), in the orchestrator's own database so
every replica resolves a code any replica issued. A row lives as long as its QR is valid."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from central.db import Step, autocommit, create_tables
from central.errors import ApiError
from proto.short_code import new_short_code

metadata = sa.MetaData()

short_codes = sa.Table(
    "short_codes",
    metadata,
    sa.Column("code", sa.String(9), primary_key=True),
    sa.Column("token", sa.Text, nullable=False),  # the QR payload it stands for
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# Versions far above the saga log's own steps (gate_scans uses 101): one schema_migrations table.
STEPS = [Step(102, "short codes", create_tables(metadata, "short_codes"))]
# expired rows are swept this long after they expired (kept a little for the logs' sake)
SWEEP_AFTER_S = 3600.0


class ShortCodeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = autocommit(engine)

    async def issue(self, token: str, expires_at: float) -> str:
        """A fresh code for token. 32^8 codes: a clash is rare, and retried."""
        for _ in range(5):
            code = new_short_code()
            try:
                async with self.engine.connect() as conn:
                    await conn.execute(
                        short_codes.insert().values(code=code, token=token, expires_at=expires_at)
                    )
                    await conn.execute(
                        short_codes.delete().where(
                            short_codes.c.expires_at < time.time() - SWEEP_AFTER_S
                        )
                    )
                return code
            except IntegrityError:
                continue
            except DBAPIError as exc:
                raise ApiError("SERVICE_UNAVAILABLE", "short code store unavailable") from exc
        raise ApiError("SERVICE_UNAVAILABLE", "could not issue a short code")

    async def resolve(self, code: str, now: float) -> str | None:
        """The QR payload behind code while it is valid; None for unknown or expired."""
        query = sa.select(short_codes.c.token).where(
            short_codes.c.code == code, short_codes.c.expires_at > now
        )
        try:
            async with self.engine.connect() as conn:
                token = await conn.scalar(query)
        except DBAPIError as exc:
            raise ApiError("SERVICE_UNAVAILABLE", "short code store unavailable") from exc
        return None if token is None else str(token)
