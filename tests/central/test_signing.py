"""Central's signing key ring: persisted, private, rotatable, shared safely between processes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from central.signing import KeyRing, KeyRingError, _write_new_key
from proto.ticket_token import (
    R_UNKNOWN_KID,
    parse_token,
    public_key_to_text,
    public_keys_from_json,
    sign_token,
    verify_token,
)

SEAT = "0b9f6a52-3c1d-4e8f-9a7b-6c5d4e3f2a10"
NOW = 1_790_000_000.25
REPO = Path(__file__).resolve().parents[2]


def pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def key_texts(ring: KeyRing) -> dict[int, str]:
    return {kid: public_key_to_text(pk) for kid, pk in ring.public_keys().items()}


def test_first_start_creates_one_private_key(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    files = sorted((tmp_path / "signing_keys").iterdir())
    assert [f.name for f in files] == ["kid-001.pem"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "signing_keys").stat().st_mode) & 0o077 == 0
    assert ring.current_kid == 1
    assert list(ring.public_keys()) == [1]


def test_sign_and_verify(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    token = ring.sign(SEAT, 4, NOW)
    verdict = verify_token(token, ring.public_keys(), NOW)
    assert verdict.result == "OK"
    assert verdict.claims is not None
    assert (verdict.claims.seat_id, verdict.claims.owner_epoch) == (SEAT, 4)
    assert verdict.claims.issued_at == 1_790_000_000  # floored to the second
    assert verdict.claims.kid == ring.current_kid
    assert ring.verify(token, NOW + 61).result == "EXPIRED"


def test_keys_survive_a_reload(tmp_path: Path) -> None:
    first = KeyRing.load_or_create(tmp_path)
    token = first.sign(SEAT, 1, NOW)
    second = KeyRing.load_or_create(tmp_path)
    assert key_texts(second) == key_texts(first)
    assert second.verify(token, NOW).result == "OK"
    assert len(list((tmp_path / "signing_keys").iterdir())) == 1


def test_rotation_keeps_old_keys_for_verification(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    old = ring.sign(SEAT, 1, NOW)
    assert ring.rotate() == 2
    assert ring.current_kid == 2
    new = ring.sign(SEAT, 1, NOW)
    assert parse_token(new) is not None and parse_token(new).kid == 2  # type: ignore[union-attr]
    assert ring.verify(old, NOW).result == "OK"
    assert ring.verify(new, NOW).result == "OK"
    assert [k["kid"] for k in ring.public_keys_json()] == [1, 2]

    reloaded = KeyRing.load_or_create(tmp_path)
    assert reloaded.current_kid == 2
    assert key_texts(reloaded) == key_texts(ring)
    for path in (tmp_path / "signing_keys").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "signing_keys").iterdir()) == [
        "kid-001.pem",
        "kid-002.pem",
    ]


def test_unknown_kid_is_invalid(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    stranger = sign_token(SEAT, 1, int(NOW), 3, Ed25519PrivateKey.generate())
    verdict = ring.verify(stranger, NOW)
    assert verdict.result == "INVALID" and verdict.reason == R_UNKNOWN_KID


def test_a_rotation_by_another_process_is_picked_up_on_unknown_kid(tmp_path: Path) -> None:
    here = KeyRing.load_or_create(tmp_path)
    there = KeyRing.load_or_create(tmp_path)
    assert there.rotate() == 2
    token = there.sign(SEAT, 2, NOW)
    assert verify_token(token, here.public_keys(), NOW).reason == R_UNKNOWN_KID
    assert here.verify(token, NOW).result == "OK"  # re-read the directory once
    assert here.current_kid == 2
    # and a rotation after that builds on the newest kid instead of colliding with it
    assert here.rotate() == 3


def test_public_keys_json_is_what_the_gate_reads(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    ring.rotate()
    items = json.loads(json.dumps(ring.public_keys_json()))
    assert all(set(item) == {"kid", "public_key"} for item in items)
    gate_keys = public_keys_from_json(items)
    assert verify_token(ring.sign(SEAT, 9, NOW), gate_keys, NOW).result == "OK"


def test_losing_the_create_race_keeps_the_winners_key(tmp_path: Path) -> None:
    key_dir = tmp_path / "signing_keys"
    key_dir.mkdir()
    assert _write_new_key(key_dir, 1) is True
    winner = (key_dir / "kid-001.pem").read_bytes()
    assert _write_new_key(key_dir, 1) is False
    assert (key_dir / "kid-001.pem").read_bytes() == winner
    assert [p.name for p in key_dir.iterdir()] == ["kid-001.pem"]  # no temp files left


def test_racing_processes_agree_on_one_key(tmp_path: Path) -> None:
    start_at = time.time() + 1.5  # every process is imported and waiting before the start
    script = (
        "import sys, time; from pathlib import Path\n"
        "from central.signing import KeyRing\n"
        "from proto.ticket_token import public_key_to_text\n"
        f"time.sleep(max(0.0, {start_at} - time.time()))\n"
        "ring = KeyRing.load_or_create(Path(sys.argv[1]))\n"
        "print(public_key_to_text(ring.public_keys()[ring.current_kid]))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    assert len(set(outputs)) == 1
    assert [p.name for p in (tmp_path / "signing_keys").iterdir()] == ["kid-001.pem"]
    assert key_texts(KeyRing.load_or_create(tmp_path)) == {1: outputs[0]}


def test_operator_given_keys(tmp_path: Path) -> None:
    k3, k5 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ring = KeyRing.from_private_pem({3: pem(k3), 5: pem(k5).decode("ascii")})
    assert ring.current_kid == 5
    assert key_texts(ring) == {
        3: public_key_to_text(k3.public_key()),
        5: public_key_to_text(k5.public_key()),
    }
    token = ring.sign(SEAT, 1, NOW)
    assert verify_token(token, {5: k5.public_key()}, NOW).result == "OK"
    old = sign_token(SEAT, 1, int(NOW), 3, k3)
    assert ring.verify(old, NOW).result == "OK"
    with pytest.raises(KeyRingError, match="operator"):
        ring.rotate()


def test_operator_keys_with_a_password() -> None:
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption

    data = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw"))
    ring = KeyRing.from_private_pem({1: data}, password=b"pw")
    assert key_texts(ring) == {1: public_key_to_text(key.public_key())}
    with pytest.raises(KeyRingError, match="signing key 1"):
        KeyRing.from_private_pem({1: data}, password=b"wrong")


@pytest.mark.parametrize(
    ("pems", "message"),
    [
        ({}, "at least one"),
        ({1: b"not a pem"}, "signing key 1: not a readable PEM"),
        ({0: None}, "kid must be"),
        ({256: None}, "kid must be"),
    ],
)
def test_bad_operator_keys(pems: dict[int, bytes], message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing.from_private_pem(pems)


def test_a_non_ed25519_key_is_refused() -> None:
    ec = generate_private_key(SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    with pytest.raises(KeyRingError, match="must be an Ed25519 key"):
        KeyRing.from_private_pem({1: ec})


def test_a_corrupt_key_file_stops_the_start(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path)
    (tmp_path / "signing_keys" / "kid-002.pem").write_bytes(b"garbage")
    with pytest.raises(KeyRingError, match="kid-002.pem"):
        KeyRing.load_or_create(tmp_path)


def test_sign_refuses_a_broken_clock(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    with pytest.raises(ValueError):
        ring.sign(SEAT, 1, float("nan"))
