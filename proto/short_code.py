"""The short code printed under a ticket's QR: what a person can read out when the camera cannot
read the screen. Eight characters of Crockford's base32 (no I, L, O, U: nothing to confuse),
shown as ABCD-EFGH. It is not the ticket: central issues a fresh random one with every QR and
keeps it only as long as that QR is valid, so it rotates with the code and only central can
resolve it (a gate offline asks for a scan instead)."""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
# what people type for what they read: Crockford's rules
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SHAPE = re.compile(rf"[{ALPHABET}]{{{LENGTH}}}")


def new_short_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_short_code(text: str) -> str | None:
    """The canonical ABCD-EFGH form of what was typed (any case, with or without the dash or
    spaces), or None when it is not a short code."""
    if not isinstance(text, str) or len(text) > 16:
        return None
    raw = re.sub(r"[\s-]", "", text).upper().translate(_READ_AS)
    if not _SHAPE.fullmatch(raw):
        return None
    return f"{raw[:4]}-{raw[4:]}"
