"""The signed ticket token carried in the QR code (ARCHITECTURE §5.3).

Binary layout, big-endian:

    version (1, =1) | kid (1) | issued_at (4, unix s, unsigned) | seat id (16, UUID) | owner_epoch (4)

followed by the 64-byte Ed25519 signature over those 26 bytes: 90 bytes, base45 (RFC 9285) encoded
behind the prefix ``TR1:`` — 139 characters, all in the QR alphanumeric set.

Pure functions, no I/O: the gate verifies with public keys only, central signs with a private key.
``verify_token`` never raises on the scanned text — whatever it is, the answer is a Verdict.

Time rules are judged in whole seconds because ``issued_at`` has one-second resolution: ``now`` is
floored first. So with ttl=60 a token is OK for the whole second ``issued_at + 60`` and EXPIRED from
``issued_at + 61``; with skew=5 a token is OK while ``issued_at <= floor(now) + 5`` and NOT_YET_VALID
from ``floor(now) + 6``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import math
import re
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import base45
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

logger = logging.getLogger(__name__)

PREFIX = "TR1:"
VERSION = 1
TTL_SECONDS = 60
SKEW_SECONDS = 5

_BODY = struct.Struct(">BBI16sI")  # version, kid, issued_at, seat id, owner_epoch
BODY_LENGTH = _BODY.size  # 26
SIGNATURE_LENGTH = 64
TOKEN_BYTES = BODY_LENGTH + SIGNATURE_LENGTH  # 90
# base45 turns every 2 bytes into 3 characters; 90 bytes is even, so no short tail.
TOKEN_LENGTH = len(PREFIX) + TOKEN_BYTES // 2 * 3  # 139

_U32_MAX = 0xFFFFFFFF
_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")

Result = Literal["OK", "INVALID", "EXPIRED", "NOT_YET_VALID"]

# Verdict.reason values: short, stable, safe to log and to switch on.
R_OK = "ok"
R_NOT_A_STRING = "not_a_string"
R_BAD_PREFIX = "bad_prefix"
R_BAD_LENGTH = "bad_length"
R_BAD_BASE45 = "bad_base45"
R_BAD_VERSION = "bad_version"
R_UNKNOWN_KID = "unknown_kid"
R_BAD_SIGNATURE = "bad_signature"
R_EXPIRED = "expired"
R_NOT_YET_VALID = "not_yet_valid"
R_ERROR = "error"


@dataclass(frozen=True)
class TicketClaims:
    seat_id: str  # canonical lower-case hyphenated UUID text
    owner_epoch: int
    issued_at: int  # unix seconds
    kid: int


@dataclass(frozen=True)
class Verdict:
    result: Result
    claims: TicketClaims | None  # None exactly when INVALID: nothing unsigned is revealed
    reason: str

    @property
    def ok(self) -> bool:
        return self.result == "OK"


def _invalid(reason: str) -> Verdict:
    return Verdict("INVALID", None, reason)


def sign_token(
    seat_id: str, owner_epoch: int, issued_at: int, kid: int, private_key: Ed25519PrivateKey
) -> str:
    """The QR text for one seat. Raises ValueError for values the layout cannot carry."""
    if not isinstance(seat_id, str):
        raise ValueError(f"seat_id: must be UUID text (got {seat_id!r})")
    seat = uuid.UUID(seat_id)  # ValueError when not a UUID
    for name, value, top in (
        ("owner_epoch", owner_epoch, _U32_MAX),
        ("issued_at", issued_at, _U32_MAX),
        ("kid", kid, 0xFF),
    ):
        # bool is an int subclass; a True epoch is a bug, not a 1
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise ValueError(f"{name}: must be an integer 0..{top} (got {value!r})")
    body = _BODY.pack(VERSION, kid, issued_at, seat.bytes, owner_epoch)
    encoded: bytes = base45.b45encode(body + private_key.sign(body))
    return PREFIX + encoded.decode("ascii")


def parse_token(text: Any) -> TicketClaims | None:
    """The claims of a well-formed token WITHOUT checking its signature (for logs and tests).

    Never trust this for a decision; use ``verify_token``. None when the text is malformed."""
    raw = _decode(text)
    if isinstance(raw, str) or raw[0] != VERSION:
        return None
    return _claims(raw)


def verify_token(
    text: Any,
    public_keys: Mapping[int, Ed25519PublicKey],
    now: float,
    *,
    ttl: int = TTL_SECONDS,
    skew: int = SKEW_SECONDS,
) -> Verdict:
    """Judge a scanned text: INVALID, then EXPIRED, then NOT_YET_VALID, else OK.

    The signature is checked before any time rule, so a forged or damaged token can only ever be
    INVALID. ``now`` is the caller's clock (central's time on a gate) and must be finite."""
    if not isinstance(now, int | float) or isinstance(now, bool) or not math.isfinite(now):
        # a broken clock is the caller's bug, not a property of the scanned text
        raise ValueError(f"now: must be a finite number (got {now!r})")
    try:
        raw = _decode(text)
        if isinstance(raw, str):
            return _invalid(raw)
        if raw[0] != VERSION:
            return _invalid(R_BAD_VERSION)
        key = public_keys.get(raw[1])
        if key is None:
            return _invalid(R_UNKNOWN_KID)
        try:
            key.verify(raw[BODY_LENGTH:], raw[:BODY_LENGTH])
        except InvalidSignature:
            return _invalid(R_BAD_SIGNATURE)
        claims = _claims(raw)
    except Exception:  # the text is hostile input: no exception may escape from it
        logger.exception("ticket token check failed unexpectedly")
        return _invalid(R_ERROR)
    second = math.floor(now)
    if second > claims.issued_at + ttl:
        return Verdict("EXPIRED", claims, R_EXPIRED)
    if claims.issued_at > second + skew:
        return Verdict("NOT_YET_VALID", claims, R_NOT_YET_VALID)
    return Verdict("OK", claims, R_OK)


def _decode(text: Any) -> bytes | str:
    """The 90 raw bytes, or the reason the text is not a token."""
    if not isinstance(text, str):
        return R_NOT_A_STRING
    if not text.startswith(PREFIX):
        return R_BAD_PREFIX
    # An exact length also makes the text canonical: the base45 library strips a trailing
    # newline, which would otherwise let two different texts decode to one token.
    if len(text) != TOKEN_LENGTH:
        return R_BAD_LENGTH
    try:
        raw: bytes = base45.b45decode(text[len(PREFIX) :])
    except (ValueError, TypeError, UnicodeError):
        return R_BAD_BASE45
    if len(raw) != TOKEN_BYTES:
        return R_BAD_LENGTH
    return raw


def _claims(raw: bytes) -> TicketClaims:
    _version, kid, issued_at, seat, epoch = _BODY.unpack_from(raw)
    return TicketClaims(str(uuid.UUID(bytes=seat)), epoch, issued_at, kid)


# ----- public keys as text (manifest, config) -----


def public_key_to_text(public_key: Ed25519PublicKey) -> str:
    """base64url of the raw 32-byte key, without padding."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=256)
def public_key_from_text(text: str) -> Ed25519PublicKey:
    """The key for ``public_key_to_text`` output (padding optional). ValueError when malformed.

    Cached: a gate re-reads the same few keys from every manifest."""
    # the stdlib decoder skips characters outside the alphabet; a key must not be that lenient
    if not isinstance(text, str) or not _KEY_TEXT.fullmatch(text):
        raise ValueError("public_key: must be 43 base64url characters (32 raw bytes)")
    try:
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=")
    except binascii.Error as exc:
        raise ValueError("public_key: not base64url") from exc
    return Ed25519PublicKey.from_public_bytes(raw)


def public_keys_from_json(items: Iterable[Mapping[str, Any]]) -> dict[int, Ed25519PublicKey]:
    """``[{"kid": 1, "public_key": "..."}]`` (manifest ``keys``) -> ``{kid: key}``.

    ValueError naming the bad entry; central produced it, so a bad entry means a broken peer."""
    keys: dict[int, Ed25519PublicKey] = {}
    for index, item in enumerate(items):
        kid = item.get("kid") if isinstance(item, Mapping) else None
        if not isinstance(kid, int) or isinstance(kid, bool) or not 0 <= kid <= 0xFF:
            raise ValueError(f"keys[{index}].kid: must be an integer 0..255")
        try:
            keys[kid] = public_key_from_text(item["public_key"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"keys[{index}].public_key: {exc}") from exc
    return keys
