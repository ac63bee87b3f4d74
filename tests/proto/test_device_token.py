"""TR2, the device-bound code: layout and QR size, both signatures, tampering of every byte,
truncation, points off the curve, another device's or another issuer's signature, time rules."""

from __future__ import annotations

import struct
import uuid

import base45
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto.ticket_token import (
    CERT_BODY_LENGTH,
    CERT_LENGTH,
    PREFIX_TR2,
    R_BAD_DEVICE_KEY,
    R_BAD_DEVICE_SIGNATURE,
    R_BAD_SIGNATURE,
    R_CERT_EXPIRED,
    R_UNKNOWN_KID,
    TR2_BYTES,
    TR2_LENGTH,
    issue_device_cert,
    parse_token,
    sign_device_code,
    sign_token,
    verify_token,
)

CENTRAL = Ed25519PrivateKey.generate()
FOREIGN_CENTRAL = Ed25519PrivateKey.generate()
KEYS = {3: CENTRAL.public_key()}
PHONE = ec.generate_private_key(ec.SECP256R1())
OTHER_PHONE = ec.generate_private_key(ec.SECP256R1())
SEAT = "3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f809a1b"
CERTIFIED = 1_790_000_000
NOT_AFTER = CERTIFIED + 7 * 86400
T = CERTIFIED + 3600
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def cert_for(device: ec.EllipticCurvePrivateKey, *, serial: int = 1, issuer=CENTRAL) -> bytes:
    return issue_device_cert(SEAT, 4, CERTIFIED, 3, serial, NOT_AFTER, point(device), issuer)


CERT = cert_for(PHONE)
CODE = sign_device_code(CERT, T, PHONE)
RAW = base45.b45decode(CODE[len(PREFIX_TR2) :])


def reencode(raw: bytes) -> str:
    return PREFIX_TR2 + base45.b45encode(raw).decode("ascii")


def assert_invalid(text: object, reason: str | None = None) -> None:
    verdict = verify_token(text, KEYS, T)
    assert verdict.result == "INVALID", (text, verdict)
    assert verdict.claims is None
    if reason is not None:
        assert verdict.reason == reason


def test_sizes_and_qr_version() -> None:
    assert len(CERT) == CERT_LENGTH == 129
    assert len(RAW) == TR2_BYTES == 197
    assert len(CODE) == TR2_LENGTH == 300
    qr = segno.make(CODE, error="m", boost_error=False, micro=False)
    assert qr.mode == "alphanumeric"
    assert qr.version <= 10
    assert qr.error == "M"


def test_genuine_code_carries_its_claims() -> None:
    verdict = verify_token(CODE, KEYS, T + 30)
    assert verdict.result == "OK", verdict
    claims = verdict.claims
    assert claims is not None
    assert (claims.seat_id, claims.owner_epoch, claims.issued_at, claims.kid) == (SEAT, 4, T, 3)
    assert (claims.device_serial, claims.not_after, claims.version) == (1, NOT_AFTER, 2)
    assert parse_token(CODE) == claims


def test_tr1_is_still_judged_as_before() -> None:
    tr1 = sign_token(SEAT, 4, T, 3, CENTRAL)
    verdict = verify_token(tr1, KEYS, T)
    assert verdict.result == "OK" and verdict.claims is not None
    assert verdict.claims.device_serial is None and verdict.claims.version == 1


@FAST
@given(index=st.integers(0, TR2_BYTES - 1), flip=st.integers(1, 255))
def test_every_byte_change_is_invalid(index: int, flip: int) -> None:
    tampered = bytearray(RAW)
    tampered[index] ^= flip
    assert_invalid(reencode(bytes(tampered)))


def test_each_byte_position_once() -> None:
    # the property above samples; this walks every position so no field is ever left unsigned
    for index in range(TR2_BYTES):
        tampered = bytearray(RAW)
        tampered[index] ^= 0x01
        assert_invalid(reencode(bytes(tampered)))


@FAST
@given(cut=st.integers(0, TR2_LENGTH - 1))
def test_truncation_is_invalid(cut: int) -> None:
    assert_invalid(CODE[:cut])


@FAST
@given(
    extra=st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", min_size=1, max_size=6)
)
def test_extension_is_invalid(extra: str) -> None:
    assert_invalid(CODE + extra)


def _cert_with_point(raw_point: bytes) -> bytes:
    """A certificate central really signed, over a 33-byte value that is not a usable key."""
    body = struct.pack(
        ">BBI16sIHI33s", 2, 3, CERTIFIED, uuid.UUID(SEAT).bytes, 4, 1, NOT_AFTER, raw_point
    )
    return body + CENTRAL.sign(body)


def _off_curve_x() -> int:
    """The smallest x for which x^3 - 3x + b has no square root mod p: no point has it."""
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    x = 1
    while True:
        rhs = (pow(x, 3, P256_PRIME) - 3 * x + b) % P256_PRIME
        if pow(rhs, (P256_PRIME - 1) // 2, P256_PRIME) != 1:
            return x
        x += 1


@pytest.mark.parametrize(
    "raw_point",
    [
        b"\x02" + _off_curve_x().to_bytes(32, "big"),  # no point has this x
        b"\x03" + P256_PRIME.to_bytes(32, "big"),  # x not reduced mod p
        b"\x04" + point(PHONE)[1:],  # not a compressed-point prefix
        b"\x00" * 33,  # the point at infinity's encoding, padded
        b"\x02" + b"\xff" * 32,
    ],
)
def test_points_off_the_curve_are_invalid(raw_point: bytes) -> None:
    cert = _cert_with_point(raw_point)
    code_raw = cert + struct.pack(">I", T) + b"\x01" * 64
    assert_invalid(reencode(code_raw), R_BAD_DEVICE_KEY)
    with pytest.raises(ValueError):
        issue_device_cert(SEAT, 4, CERTIFIED, 3, 1, NOT_AFTER, raw_point, CENTRAL)


def test_another_phones_signature_is_invalid() -> None:
    assert_invalid(sign_device_code(CERT, T, OTHER_PHONE), R_BAD_DEVICE_SIGNATURE)


def test_a_certificate_from_another_issuer_is_invalid() -> None:
    forged = sign_device_code(cert_for(PHONE, issuer=FOREIGN_CENTRAL), T, PHONE)
    assert_invalid(forged, R_BAD_SIGNATURE)
    assert verify_token(forged, {4: CENTRAL.public_key()}, T).reason == R_UNKNOWN_KID


@pytest.mark.parametrize("r,s", [(0, 1), (1, 0), (P256_ORDER, 1), (1, P256_ORDER)])
def test_out_of_range_signature_scalars_are_invalid(r: int, s: int) -> None:
    raw = RAW[: CERT_LENGTH + 4] + r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert_invalid(reencode(raw), R_BAD_DEVICE_SIGNATURE)


def test_the_certificate_cannot_be_moved_to_another_seat_or_epoch() -> None:
    # the device signs over the whole certificate, so splicing fields needs central's key
    tampered = bytearray(RAW)
    tampered[6:22] = uuid.uuid4().bytes
    assert_invalid(reencode(bytes(tampered)), R_BAD_SIGNATURE)


def test_time_rules() -> None:
    assert verify_token(CODE, KEYS, T + 60).result == "OK"
    assert verify_token(CODE, KEYS, T + 61).result == "EXPIRED"
    assert verify_token(CODE, KEYS, T - 5).result == "OK"
    assert verify_token(CODE, KEYS, T - 6).result == "NOT_YET_VALID"
    late = sign_device_code(CERT, NOT_AFTER + 6, PHONE)
    verdict = verify_token(late, KEYS, NOT_AFTER + 6)
    assert (verdict.result, verdict.reason) == ("EXPIRED", R_CERT_EXPIRED)
    assert verify_token(sign_device_code(CERT, NOT_AFTER, PHONE), KEYS, NOT_AFTER).ok


def test_bad_inputs_to_the_issuer_are_refused() -> None:
    with pytest.raises(ValueError, match="device_serial"):
        issue_device_cert(SEAT, 4, CERTIFIED, 3, 70_000, NOT_AFTER, point(PHONE), CENTRAL)
    with pytest.raises(ValueError, match="seat_id"):
        issue_device_cert("nope", 4, CERTIFIED, 3, 1, NOT_AFTER, point(PHONE), CENTRAL)
    with pytest.raises(ValueError, match="cert"):
        sign_device_code(CERT[:-1], T, PHONE)
    assert CERT_BODY_LENGTH == 65
