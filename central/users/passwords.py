"""Password hashing with Argon2id (argon2-cffi), run in a thread so a login never stalls the loop."""

from __future__ import annotations

import asyncio
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)


class Passwords:
    """Hash and check passwords. The default hasher uses argon2-cffi's recommended parameters;
    tests may hand in a cheaper one (only tests: it changes nothing about the stored format)."""

    def __init__(self, hasher: PasswordHasher | None = None):
        self._hasher = hasher or PasswordHasher()
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
