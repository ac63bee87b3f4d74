"""The QR ticket token: layout, QR size, tamper resistance, time edges, key rotation."""

from __future__ import annotations

import math
import uuid

import base45
import pytest
import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto.ticket_token import (
    PREFIX,
    R_BAD_LENGTH,
    R_BAD_PREFIX,
    R_BAD_SIGNATURE,
    R_BAD_VERSION,
    R_NOT_A_STRING,
    R_UNKNOWN_KID,
    TOKEN_BYTES,
    TOKEN_LENGTH,
    TicketClaims,
    ed25519_holds,
    parse_token,
    public_key_from_text,
    public_key_to_text,
    public_keys_from_json,
    sign_token,
    verify_token,
)

KEY_1 = Ed25519PrivateKey.generate()
KEY_2 = Ed25519PrivateKey.generate()
FOREIGN = Ed25519PrivateKey.generate()
KEYS = {1: KEY_1.public_key(), 2: KEY_2.public_key()}

SEAT = "3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f809a1b"
ISSUED = 1_790_000_000  # 2026-09
TOKEN = sign_token(SEAT, 7, ISSUED, 1, KEY_1)
RAW = base45.b45decode(TOKEN[len(PREFIX) :])

BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reencode(raw: bytes) -> str:
    return PREFIX + base45.b45encode(raw).decode("ascii")


def assert_invalid(text: object) -> None:
    verdict = verify_token(text, KEYS, ISSUED)
    assert verdict.result == "INVALID", (text, verdict)
    assert verdict.claims is None


# ----- format -----


def test_round_trip() -> None:
    verdict = verify_token(TOKEN, KEYS, ISSUED + 1)
    assert verdict.result == "OK" and verdict.ok
    assert verdict.claims == TicketClaims(seat_id=SEAT, owner_epoch=7, issued_at=ISSUED, kid=1)
    assert parse_token(TOKEN) == verdict.claims


def test_layout_is_the_documented_one() -> None:
    assert TOKEN.startswith("TR1:")
    assert len(TOKEN) == TOKEN_LENGTH == 139
    assert len(RAW) == TOKEN_BYTES == 90
    assert RAW[0] == 1 and RAW[1] == 1
    assert int.from_bytes(RAW[2:6], "big") == ISSUED
    assert RAW[6:22] == uuid.UUID(SEAT).bytes
    assert int.from_bytes(RAW[22:26], "big") == 7
    KEY_1.public_key().verify(RAW[26:], RAW[:26])  # raises when the signature is not over 26 bytes


def test_seat_id_comes_back_canonical() -> None:
    token = sign_token(SEAT.upper().replace("-", ""), 0, ISSUED, 2, KEY_2)
    claims = verify_token(token, KEYS, ISSUED).claims
    assert claims is not None and claims.seat_id == SEAT


@pytest.mark.parametrize(
    ("epoch", "issued_at", "kid"),
    [(0, ISSUED, 1), (1, 1_767_225_600, 1), (0xFFFFFFFF, 0xFFFFFFFF, 255), (0, 0, 0)],
)
def test_fits_qr_version_6_at_m_in_alphanumeric_mode(epoch: int, issued_at: int, kid: int) -> None:
    token = sign_token(str(uuid.uuid4()), epoch, issued_at, kid, KEY_1)
    assert set(token) <= set(BASE45_ALPHABET)
    qr = segno.make(token, error="m", micro=False)
    assert qr.mode == "alphanumeric"
    assert isinstance(qr.version, int) and qr.version <= 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seat_id": "not-a-uuid"},
        {"owner_epoch": -1},
        {"owner_epoch": 2**32},
        {"owner_epoch": True},
        {"issued_at": 2**32},
        {"issued_at": 1.5},
        {"kid": 256},
        {"kid": -1},
    ],
)
def test_sign_rejects_what_the_layout_cannot_carry(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"seat_id": SEAT, "owner_epoch": 1, "issued_at": ISSUED, "kid": 1}
    args.update(kwargs)
    with pytest.raises(ValueError):
        sign_token(private_key=KEY_1, **args)  # type: ignore[arg-type]


# ----- anything but an intact token is INVALID, and nothing raises -----


def test_every_single_byte_change_is_invalid() -> None:
    # exhaustive: all 90 positions x all 255 other values (kid 2 is a known key too)
    for position in range(TOKEN_BYTES):
        for value in range(256):
            if value == RAW[position]:
                continue
            changed = RAW[:position] + bytes([value]) + RAW[position + 1 :]
            verdict = verify_token(reencode(changed), KEYS, ISSUED)
            assert verdict.result == "INVALID", (position, value)
            assert verdict.claims is None


def test_the_failing_check_is_named() -> None:
    def with_byte(position: int, value: int) -> str:
        return reencode(RAW[:position] + bytes([value]) + RAW[position + 1 :])

    assert verify_token(with_byte(0, 2), KEYS, ISSUED).reason == R_BAD_VERSION
    assert verify_token(with_byte(1, 9), KEYS, ISSUED).reason == R_UNKNOWN_KID
    assert verify_token(with_byte(1, 2), KEYS, ISSUED).reason == R_BAD_SIGNATURE
    assert verify_token(with_byte(30, RAW[30] ^ 1), KEYS, ISSUED).reason == R_BAD_SIGNATURE
    assert verify_token(b"TR1:", KEYS, ISSUED).reason == R_NOT_A_STRING
    assert verify_token("tr1:" + TOKEN[4:], KEYS, ISSUED).reason == R_BAD_PREFIX
    assert verify_token(TOKEN + "\n", KEYS, ISSUED).reason == R_BAD_LENGTH


@FAST
@given(
    seat=st.uuids(),
    epoch=st.integers(0, 2**32 - 1),
    issued_at=st.integers(0, 2**32 - 1),
    position=st.integers(0, TOKEN_BYTES - 1),
    flip=st.integers(1, 255),
)
def test_any_token_with_one_byte_changed_is_invalid(
    seat: uuid.UUID, epoch: int, issued_at: int, position: int, flip: int
) -> None:
    raw = bytearray(base45.b45decode(sign_token(str(seat), epoch, issued_at, 2, KEY_2)[4:]))
    raw[position] ^= flip
    verdict = verify_token(reencode(bytes(raw)), KEYS, issued_at)
    assert verdict.result == "INVALID" and verdict.claims is None


def test_every_truncation_is_invalid() -> None:
    for end in range(len(TOKEN)):
        assert_invalid(TOKEN[:end])
        assert_invalid(TOKEN[end + 1 :])  # and every cut from the front


@FAST
@given(cut=st.integers(0, TOKEN_LENGTH - 1), tail=st.text(alphabet=BASE45_ALPHABET, max_size=8))
def test_truncated_then_padded_is_invalid(cut: int, tail: str) -> None:
    text = TOKEN[:cut] + tail
    if text != TOKEN:
        assert_invalid(text)


@FAST
@given(st.text())
def test_garbage_text_is_invalid(text: str) -> None:
    assert_invalid(text)


@FAST
@given(st.text(alphabet=BASE45_ALPHABET, min_size=135, max_size=135))
def test_garbage_base45_of_the_right_length_is_invalid(body: str) -> None:
    assert_invalid(PREFIX + body)


@FAST
@given(st.binary(min_size=TOKEN_BYTES, max_size=TOKEN_BYTES))
def test_random_90_bytes_are_invalid(raw: bytes) -> None:
    assert_invalid(reencode(raw))


@FAST
@given(
    st.one_of(
        st.binary(),
        st.none(),
        st.integers(),
        st.floats(),
        st.lists(st.integers()),
        st.dictionaries(st.text(), st.integers()),
    )
)
def test_non_strings_are_invalid(value: object) -> None:
    assert_invalid(value)


def test_bytes_of_a_good_token_are_still_invalid() -> None:
    assert_invalid(TOKEN.encode("ascii"))


def test_lower_case_is_invalid() -> None:
    assert_invalid(TOKEN.lower())
    assert_invalid(PREFIX + TOKEN[4:].lower())


def test_token_signed_by_a_foreign_key_is_invalid() -> None:
    forged = sign_token(SEAT, 7, ISSUED, 1, FOREIGN)
    verdict = verify_token(forged, KEYS, ISSUED)
    assert verdict.result == "INVALID" and verdict.reason == R_BAD_SIGNATURE
    assert verdict.claims is None
    assert parse_token(forged) is not None  # well-formed: only the signature gives it away


def test_invalid_wins_over_expired_and_not_yet_valid() -> None:
    forged = sign_token(SEAT, 7, ISSUED, 1, FOREIGN)
    assert verify_token(forged, KEYS, ISSUED + 10_000).result == "INVALID"
    assert verify_token(forged, KEYS, ISSUED - 10_000).result == "INVALID"
    assert verify_token(TOKEN, KEYS, ISSUED + 10_000).result == "EXPIRED"


# ----- time edges: judged in whole seconds -----


def test_expiry_edge() -> None:
    assert verify_token(TOKEN, KEYS, ISSUED + 60).result == "OK"
    assert verify_token(TOKEN, KEYS, ISSUED + 60.999).result == "OK"
    expired = verify_token(TOKEN, KEYS, ISSUED + 61)
    assert expired.result == "EXPIRED"
    assert expired.claims is not None and expired.claims.seat_id == SEAT


def test_future_tolerance_edge() -> None:
    # the token may be up to skew seconds ahead of now
    assert verify_token(TOKEN, KEYS, ISSUED - 5).result == "OK"
    early = verify_token(TOKEN, KEYS, ISSUED - 6)
    assert early.result == "NOT_YET_VALID"
    assert early.claims is not None and early.claims.owner_epoch == 7
    assert verify_token(TOKEN, KEYS, ISSUED - 5.5).result == "NOT_YET_VALID"


def test_custom_ttl_and_skew() -> None:
    assert verify_token(TOKEN, KEYS, ISSUED + 10, ttl=10).result == "OK"
    assert verify_token(TOKEN, KEYS, ISSUED + 11, ttl=10).result == "EXPIRED"
    assert verify_token(TOKEN, KEYS, ISSUED - 30, skew=30).result == "OK"
    assert verify_token(TOKEN, KEYS, ISSUED - 31, skew=30).result == "NOT_YET_VALID"


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_a_broken_clock_is_the_callers_bug(now: float) -> None:
    with pytest.raises(ValueError):
        verify_token(TOKEN, KEYS, now)


# ----- keys -----


def test_rotation_old_kid_still_verifies_unknown_kid_is_invalid() -> None:
    old = sign_token(SEAT, 1, ISSUED, 1, KEY_1)
    new = sign_token(SEAT, 1, ISSUED, 2, KEY_2)
    assert verify_token(old, KEYS, ISSUED).result == "OK"
    assert verify_token(new, KEYS, ISSUED).result == "OK"
    assert verify_token(new, {1: KEY_1.public_key()}, ISSUED).reason == R_UNKNOWN_KID
    # a kid names exactly one key: the old key under the new kid does not verify
    assert verify_token(old, {1: KEY_2.public_key()}, ISSUED).reason == R_BAD_SIGNATURE


def test_public_key_text_round_trip() -> None:
    text = public_key_to_text(KEY_1.public_key())
    assert len(text) == 43 and "=" not in text
    again = public_key_from_text(text)
    assert public_key_to_text(again) == text
    assert public_key_to_text(public_key_from_text(text + "=")) == text
    assert verify_token(TOKEN, {1: again}, ISSUED).result == "OK"


@pytest.mark.parametrize(
    "text",
    ["", "abc", "A" * 42, "A" * 44, "!" * 43, "A" * 42 + "+", "A" * 20 + " " + "A" * 22],
)
def test_public_key_from_bad_text(text: str) -> None:
    with pytest.raises(ValueError):
        public_key_from_text(text)


def test_public_keys_from_manifest_json() -> None:
    items = [{"kid": k, "public_key": public_key_to_text(pk)} for k, pk in KEYS.items()]
    keys = public_keys_from_json(items)
    assert sorted(keys) == [1, 2]
    assert verify_token(TOKEN, keys, ISSUED).result == "OK"
    with pytest.raises(ValueError, match=r"keys\[0\]\.kid"):
        public_keys_from_json([{"kid": "1", "public_key": items[0]["public_key"]}])
    with pytest.raises(ValueError, match=r"keys\[1\]\.public_key"):
        public_keys_from_json([items[0], {"kid": 3, "public_key": "nope"}])
    with pytest.raises(ValueError, match=r"keys\[0\]\.public_key"):
        public_keys_from_json([{"kid": 3}])


# ----- the Ed25519 check itself (libsodium) -----

# The curve's neutral point as a public key: small order, so [8]A is the identity and a
# signature R = identity, S = 0 satisfies the cofactorless equation for every message.
IDENTITY_KEY = bytes([1]) + bytes(31)
TRIVIAL_SIGNATURE = IDENTITY_KEY + bytes(32)


def test_the_signature_check_agrees_with_openssl_on_real_keys() -> None:
    message = b"one scanned code's signed bytes"
    signature = KEY_1.sign(message)
    public = KEY_1.public_key()
    bad_signature = signature[:-1] + bytes([signature[-1] ^ 1])
    cases = [
        (public, signature, message, True),
        (public, bad_signature, message, False),
        (public, signature, message + b"!", False),
        (KEY_2.public_key(), signature, message, False),
        (public, signature[:63], message, False),  # a short signature is refused, not padded
    ]
    for key, sig, msg, genuine in cases:
        assert ed25519_holds(key, sig, msg) is genuine
        try:
            key.verify(sig, msg)
            openssl = True
        except (InvalidSignature, ValueError):
            openssl = False
        assert openssl is genuine


def test_a_small_order_key_signs_nothing() -> None:
    identity = Ed25519PublicKey.from_public_bytes(IDENTITY_KEY)
    identity.verify(TRIVIAL_SIGNATURE, b"any message")  # OpenSSL accepts this forgery ...
    assert not ed25519_holds(identity, TRIVIAL_SIGNATURE, b"any message")  # ... libsodium not
    # so a token "signed" that way under a key ring that somehow held such a key is INVALID
    genuine = base45.b45decode(sign_token(SEAT, 1, ISSUED, 1, KEY_1)[len(PREFIX) :])
    forged = base45.b45encode(genuine[: -len(TRIVIAL_SIGNATURE)] + TRIVIAL_SIGNATURE).decode()
    verdict = verify_token(PREFIX + forged, {1: identity}, ISSUED)
    assert verdict.result == "INVALID" and verdict.reason == R_BAD_SIGNATURE
