"""The short code under a QR (issue 15): what staff can type is canonicalised the way people
misread it, and resolves to its QR only while that QR is valid."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from central.db import make_engine, migrate
from central.orchestrator.short_codes import STEPS, ShortCodeStore
from proto.short_code import ALPHABET, new_short_code, normalize_short_code


def test_codes_are_eight_unambiguous_characters() -> None:
    codes = {new_short_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 9 and code[4] == "-"
        assert set(code.replace("-", "")) <= set(ALPHABET)
        assert not set(code) & set("ILOU")


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("K7QF-3M9D", "K7QF-3M9D"),
        ("k7qf3m9d", "K7QF-3M9D"),
        (" k7qf 3m9d ", "K7QF-3M9D"),
        ("KOQF-IL9D", "K0QF-119D"),  # read O as zero, I and L as one
        ("K7QF-3M9", None),
        ("K7QF-3M9DX", None),
        ("K7QF-3M9U", None),  # U is not in the alphabet
        ("TR1:ABCDEFGH", None),
        ("", None),
    ],
)
def test_typed_codes_are_canonicalised(typed: str, canonical: str | None) -> None:
    assert normalize_short_code(typed) == canonical


async def test_a_code_resolves_only_while_its_qr_is_valid(tmp_path: Path) -> None:
    engine = await make_engine(f"sqlite+aiosqlite:///{tmp_path / 'orch.sqlite3'}")
    try:
        await migrate(engine, STEPS)
        store = ShortCodeStore(engine)
        now = time.time()
        code = await store.issue("TR1:token-a", now + 65)
        other = await store.issue("TR1:token-b", now + 65)
        assert code != other
        assert await store.resolve(code, now) == "TR1:token-a"
        assert await store.resolve(other, now + 64) == "TR1:token-b"
        assert await store.resolve(code, now + 65) is None  # the QR expired, so did its code
        assert await store.resolve("AAAA-AAAA", now) is None
    finally:
        await engine.dispose()
