"""Password hashing with Argon2id (argon2-cffi), run in a thread so a login never stalls the loop."""

from __future__ import annotations

import asyncio
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)


# OWASP Password Storage Cheat Sheet's Argon2id baseline (m=19 MiB, t=2, p=1). argon2-cffi's
# default (RFC 9106 low-memory: 64 MiB, t=3, p=4) costs ~440 ms per hash on this project's 2-core
# reference machine against ~75 ms here: a burst of logins at doors-open would queue for seconds.
# Hashes carry their parameters, so raising them later only needs check_needs_rehash on login.
OWASP_TIME_COST, OWASP_MEMORY_KIB, OWASP_PARALLELISM = 2, 19 * 1024, 1


class Passwords:
    """Hash and check passwords (Argon2id, OWASP baseline parameters); tests may hand in a
    cheaper hasher (only tests: it changes nothing about the stored format)."""

    def __init__(self, hasher: PasswordHasher | None = None):
        self._hasher = hasher or PasswordHasher(
            time_cost=OWASP_TIME_COST, memory_cost=OWASP_MEMORY_KIB, parallelism=OWASP_PARALLELISM
        )
        # A real hash to check against when the e-mail is unknown, so the answer takes as long
        # as for a known account and does not reveal which e-mails exist.
        self._dummy = self._hasher.hash("not-a-real-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        target = password_hash or self._dummy
        try:
            ok = await asyncio.to_thread(self._hasher.verify, target, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(ok) and password_hash is not None
