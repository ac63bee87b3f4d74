"""The signed ticket token carried in the QR code (ARCHITECTURE §5.3).

Binary layout, big-endian:

    version (1, =1) | kid (1) | issued_at (4, unix s, unsigned) | seat id (16, UUID) | owner_epoch (4)

followed by the 64-byte Ed25519 signature over those 26 bytes: 90 bytes, base45 (RFC 9285) encoded
behind the prefix ``TR1:`` — 139 characters, all in the QR alphanumeric set.

TR2, the device-bound code an attendee's phone makes by itself while offline::

    cert (129) = version 2 (1) | kid (1) | issued_at (4) | seat id (16) | owner_epoch (4) |
                 device_serial (2) | not_after (4, unix s) | device public key (33, compressed P-256) |
                 Ed25519 signature by central over the 65 bytes before it (64)
    t (4)      = the code's time, unix seconds in central's time
    sig (64)   = ECDSA P-256 / SHA-256, raw r||s, by the device key over b"TR2" + cert + t

197 bytes behind ``TR2:`` — 300 characters, QR version 10 at M. Central certifies the phone's key once
(online); from then on the phone signs a fresh code every few seconds without the network, and a gate
checks both signatures with central's public keys alone. Freshness is judged on ``t`` exactly as a TR1
code's ``issued_at``; ``not_after`` bounds the certificate itself.

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
import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
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

# ----- TR2 (device-bound) layout -----
PREFIX_TR2 = "TR2:"
VERSION_TR2 = 2
_CERT_BODY = struct.Struct(
    ">BBI16sIHI33s"
)  # version, kid, issued_at, seat, epoch, serial, not_after, key
CERT_BODY_LENGTH = _CERT_BODY.size  # 65
CERT_LENGTH = CERT_BODY_LENGTH + SIGNATURE_LENGTH  # 129
DEVICE_KEY_LENGTH = 33
DEVICE_SIGNATURE_LENGTH = 64  # raw r || s, 32 bytes each
TR2_BYTES = CERT_LENGTH + 4 + DEVICE_SIGNATURE_LENGTH  # 197
# 197 is odd: 98 pairs give 294 characters and the last byte two more.
TR2_LENGTH = len(PREFIX_TR2) + TR2_BYTES // 2 * 3 + 2  # 300
_DEVICE_SIGNED_PREFIX = b"TR2"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_U32_MAX = 0xFFFFFFFF
_U16_MAX = 0xFFFF
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
R_BAD_DEVICE_KEY = "bad_device_key"
R_BAD_DEVICE_SIGNATURE = "bad_device_signature"
R_CERT_EXPIRED = "cert_expired"


@dataclass(frozen=True)
class TicketClaims:
    seat_id: str  # canonical lower-case hyphenated UUID text
    owner_epoch: int
    issued_at: int  # unix seconds; for TR2 the code's own time t, judged by the same 60 s rule
    kid: int
    # TR2 only: which certified device made the code, and until when its certificate holds
    device_serial: int | None = None
    not_after: int | None = None

    @property
    def version(self) -> int:
        return VERSION if self.device_serial is None else VERSION_TR2


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


def _require_int(name: str, value: Any, top: int) -> None:
    # bool is an int subclass; a True epoch is a bug, not a 1
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise ValueError(f"{name}: must be an integer 0..{top} (got {value!r})")


def _seat_bytes(seat_id: Any) -> bytes:
    if not isinstance(seat_id, str):
        raise ValueError(f"seat_id: must be UUID text (got {seat_id!r})")
    try:
        return uuid.UUID(seat_id).bytes
    except ValueError as exc:
        raise ValueError(f"seat_id: must be UUID text (got {seat_id!r})") from exc


def sign_token(
    seat_id: str, owner_epoch: int, issued_at: int, kid: int, private_key: Ed25519PrivateKey
) -> str:
    """The QR text for one seat. Raises ValueError for values the layout cannot carry."""
    seat = _seat_bytes(seat_id)
    _require_int("owner_epoch", owner_epoch, _U32_MAX)
    _require_int("issued_at", issued_at, _U32_MAX)
    _require_int("kid", kid, 0xFF)
    body = _BODY.pack(VERSION, kid, issued_at, seat, owner_epoch)
    encoded: bytes = base45.b45encode(body + private_key.sign(body))
    return PREFIX + encoded.decode("ascii")


def issue_device_cert(
    seat_id: str,
    owner_epoch: int,
    issued_at: int,
    kid: int,
    device_serial: int,
    not_after: int,
    device_public_key: bytes,
    private_key: Ed25519PrivateKey,
) -> bytes:
    """Central's certificate binding one device key to one seat at one owner epoch (129 bytes).

    ValueError for values the layout cannot carry or a key that is not a compressed P-256 point."""
    seat = _seat_bytes(seat_id)
    _require_int("owner_epoch", owner_epoch, _U32_MAX)
    _require_int("issued_at", issued_at, _U32_MAX)
    _require_int("kid", kid, 0xFF)
    _require_int("device_serial", device_serial, _U16_MAX)
    _require_int("not_after", not_after, _U32_MAX)
    if not isinstance(device_public_key, bytes) or device_key_or_none(device_public_key) is None:
        raise ValueError("public_key: must be a compressed P-256 point (33 bytes)")
    body = _CERT_BODY.pack(
        VERSION_TR2, kid, issued_at, seat, owner_epoch, device_serial, not_after, device_public_key
    )
    return body + private_key.sign(body)


def sign_device_code(cert: bytes, t: int, device_key: ec.EllipticCurvePrivateKey) -> str:
    """A TR2 code as the phone makes it (the attendee page does the same in WebCrypto)."""
    if len(cert) != CERT_LENGTH:
        raise ValueError(f"cert: must be {CERT_LENGTH} bytes")
    _require_int("t", t, _U32_MAX)
    signed = cert + struct.pack(">I", t)
    r, s = decode_dss_signature(
        device_key.sign(_DEVICE_SIGNED_PREFIX + signed, ec.ECDSA(hashes.SHA256()))
    )
    encoded: bytes = base45.b45encode(signed + r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return PREFIX_TR2 + encoded.decode("ascii")


@functools.lru_cache(maxsize=4096)
def device_key_or_none(point: bytes) -> ec.EllipticCurvePublicKey | None:
    """The P-256 key for a 33-byte compressed point, or None when it is not one on the curve.

    Cached: a gate sees the same few phones' codes again and again while they rotate."""
    if len(point) != DEVICE_KEY_LENGTH or point[0] not in (2, 3):
        return None
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return None


def parse_token(text: Any) -> TicketClaims | None:
    """The claims of a well-formed token WITHOUT checking its signature (for logs and tests).

    Never trust this for a decision; use ``verify_token``. None when the text is malformed."""
    if isinstance(text, str) and text.startswith(PREFIX_TR2):
        raw2 = _decode_tr2(text)
        return None if isinstance(raw2, str) or raw2[0] != VERSION_TR2 else _claims_tr2(raw2)
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
    """Judge a scanned text (TR1 or TR2): INVALID, then EXPIRED, then NOT_YET_VALID, else OK.

    Every signature is checked before any time rule, so a forged or damaged token can only ever be
    INVALID. ``now`` is the caller's clock (central's time on a gate) and must be finite."""
    if not isinstance(now, int | float) or isinstance(now, bool) or not math.isfinite(now):
        # a broken clock is the caller's bug, not a property of the scanned text
        raise ValueError(f"now: must be a finite number (got {now!r})")
    try:
        if isinstance(text, str) and text.startswith(PREFIX_TR2):
            checked = _check_tr2(text, public_keys)
        else:
            checked = _check_tr1(text, public_keys)
    except Exception:  # the text is hostile input: no exception may escape from it
        logger.exception("ticket token check failed unexpectedly")
        return _invalid(R_ERROR)
    if isinstance(checked, str):
        return _invalid(checked)
    return _judge_time(checked, math.floor(now), ttl, skew)


def _judge_time(claims: TicketClaims, second: int, ttl: int, skew: int) -> Verdict:
    if second > claims.issued_at + ttl:
        return Verdict("EXPIRED", claims, R_EXPIRED)
    if claims.not_after is not None and second > claims.not_after + skew:
        return Verdict("EXPIRED", claims, R_CERT_EXPIRED)
    if claims.issued_at > second + skew:
        return Verdict("NOT_YET_VALID", claims, R_NOT_YET_VALID)
    return Verdict("OK", claims, R_OK)


def _check_tr1(text: Any, public_keys: Mapping[int, Ed25519PublicKey]) -> TicketClaims | str:
    """The claims of a genuine TR1 token, or the reason it is INVALID."""
    raw = _decode(text)
    if isinstance(raw, str):
        return raw
    if raw[0] != VERSION:
        return R_BAD_VERSION
    key = public_keys.get(raw[1])
    if key is None:
        return R_UNKNOWN_KID
    if not ed25519_holds(key, raw[BODY_LENGTH:], raw[:BODY_LENGTH]):
        return R_BAD_SIGNATURE
    return _claims(raw)


def _check_tr2(text: str, public_keys: Mapping[int, Ed25519PublicKey]) -> TicketClaims | str:
    """The claims of a genuine TR2 code (central's certificate and the device's signature both
    hold), or the reason it is INVALID. Central's signature is checked first: an uncertified key
    is never even parsed as a curve point."""
    raw = _decode_tr2(text)
    if isinstance(raw, str):
        return raw
    if raw[0] != VERSION_TR2:
        return R_BAD_VERSION
    key = public_keys.get(raw[1])
    if key is None:
        return R_UNKNOWN_KID
    if not ed25519_holds(key, raw[CERT_BODY_LENGTH:CERT_LENGTH], raw[:CERT_BODY_LENGTH]):
        return R_BAD_SIGNATURE
    device_key = device_key_or_none(raw[CERT_BODY_LENGTH - DEVICE_KEY_LENGTH : CERT_BODY_LENGTH])
    if device_key is None:
        return R_BAD_DEVICE_KEY
    signed_end = CERT_LENGTH + 4
    r = int.from_bytes(raw[signed_end : signed_end + 32], "big")
    s = int.from_bytes(raw[signed_end + 32 :], "big")
    # r and s outside 1..n-1 are never valid; refusing them here keeps the DER encoder canonical
    if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
        return R_BAD_DEVICE_SIGNATURE
    try:
        device_key.verify(
            encode_dss_signature(r, s),
            _DEVICE_SIGNED_PREFIX + raw[:signed_end],
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        return R_BAD_DEVICE_SIGNATURE
    return _claims_tr2(raw)


ED25519_SIGNATURE_LENGTH = 64


def ed25519_holds(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is `key`'s Ed25519 signature of `message`, checked by libsodium
    (PyNaCl): about half the CPU of OpenSSL's check through cryptography on the machines we
    measured (bench/token_bench.py prints both, same run), and every scan pays one or two.
    libsodium is also the stricter check: it refuses small-order keys and non-canonical
    encodings, so a small-order key's trivial signature, which OpenSSL accepts, is refused here
    (tests/proto/test_ticket_token.py)."""
    if len(signature) != ED25519_SIGNATURE_LENGTH:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, key.public_bytes_raw())
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


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


def _decode_tr2(text: str) -> bytes | str:
    """The 197 raw bytes of a TR2 code, or the reason the text is not one."""
    if len(text) != TR2_LENGTH:
        return R_BAD_LENGTH
    try:
        raw: bytes = base45.b45decode(text[len(PREFIX_TR2) :])
    except (ValueError, TypeError, UnicodeError):
        return R_BAD_BASE45
    if len(raw) != TR2_BYTES:
        return R_BAD_LENGTH
    return raw


def _claims_tr2(raw: bytes) -> TicketClaims:
    _version, kid, _certified_at, seat, epoch, serial, not_after, _key = _CERT_BODY.unpack_from(raw)
    (t,) = struct.unpack_from(">I", raw, CERT_LENGTH)
    return TicketClaims(str(uuid.UUID(bytes=seat)), epoch, t, kid, serial, not_after)


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
