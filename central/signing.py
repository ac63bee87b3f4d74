"""Central's Ed25519 ticket-signing keys: which kid signs now, and every public key gates may meet.

Kept in ``<data_dir>/signing_keys/kid-NNN.pem`` (PKCS#8, files 0600, directory 0700), created on
first start. The highest kid is current; older keys stay so tokens signed before a rotation still
verify. Several processes may share one directory: a key file appears atomically (written to a
private temp file, then hard-linked into place, which fails rather than overwrites), so a racing
second process reads the winner's key instead of minting its own.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from proto.ticket_token import (
    R_UNKNOWN_KID,
    SKEW_SECONDS,
    TTL_SECONDS,
    Verdict,
    issue_device_cert,
    public_key_to_text,
    sign_token,
    verify_token,
)

logger = logging.getLogger(__name__)

KEY_DIR = "signing_keys"
FIRST_KID = 1
MAX_KID = 0xFF  # the token carries the kid in one byte
_KEY_FILE = re.compile(r"kid-(\d{3})\.pem")


class KeyRingError(Exception):
    """The signing keys cannot be loaded, parsed or extended; the message says which and why."""


class KeyRing:
    def __init__(self, keys: Mapping[int, Ed25519PrivateKey], key_dir: Path | None = None) -> None:
        if not keys:
            raise KeyRingError("signing keys: at least one key is needed")
        for kid in keys:
            _check_kid(kid)
        self._keys: dict[int, Ed25519PrivateKey] = dict(keys)
        self._public: dict[int, Ed25519PublicKey] = {}
        self._key_dir = key_dir
        self._lock = threading.Lock()
        self._index()

    # ----- construction -----

    @classmethod
    def load_or_create(cls, data_dir: Path) -> KeyRing:
        """The keys in ``data_dir/signing_keys``; the first one is created when there is none."""
        key_dir = Path(data_dir) / KEY_DIR
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = _read_dir(key_dir)
        if not keys:
            _write_new_key(key_dir, FIRST_KID)  # loses the race harmlessly: re-read below
            keys = _read_dir(key_dir)
            logger.info("signing keys: kid %d in use", max(keys))
        return cls(keys, key_dir)

    @classmethod
    def from_dir(cls, key_dir: Path) -> KeyRing:
        """Operator-given keys: a folder of `kid-NNN.pem` files (for example one shared by every
        orchestrator replica); nothing is created, and an empty folder is an error."""
        keys = _read_dir(Path(key_dir))
        if not keys:
            raise KeyRingError(f"no signing keys (kid-NNN.pem) in {key_dir}")
        return cls(keys, Path(key_dir))

    @classmethod
    def from_private_pem(
        cls, pems: Mapping[int, bytes | str], *, password: bytes | None = None
    ) -> KeyRing:
        """Operator-given keys ``{kid: PEM}``; the highest kid signs. Not persisted, not rotated."""
        keys: dict[int, Ed25519PrivateKey] = {}
        for kid, pem in pems.items():
            _check_kid(kid)
            data = pem.encode("ascii") if isinstance(pem, str) else pem
            keys[kid] = _parse_pem(data, f"signing key {kid}", password)
        return cls(keys)

    # ----- use -----

    @property
    def current_kid(self) -> int:
        return self._current

    def sign(self, seat_id: str, owner_epoch: int, now: float) -> str:
        """A fresh QR token for the seat, issued at ``floor(now)`` by the current key."""
        if not math.isfinite(now):
            raise ValueError(f"now: must be a finite number (got {now!r})")
        kid = self._current
        return sign_token(seat_id, owner_epoch, math.floor(now), kid, self._keys[kid])

    def certify_device(
        self,
        seat_id: str,
        owner_epoch: int,
        device_serial: int,
        not_after: int,
        device_public_key: bytes,
        now: float,
    ) -> bytes:
        """Central's TR2 certificate for one phone's key on one seat (issued by the current key).
        ValueError when the key is not a compressed P-256 point."""
        if not math.isfinite(now):
            raise ValueError(f"now: must be a finite number (got {now!r})")
        kid = self._current
        return issue_device_cert(
            seat_id,
            owner_epoch,
            math.floor(now),
            kid,
            device_serial,
            not_after,
            device_public_key,
            self._keys[kid],
        )

    def public_keys(self) -> dict[int, Ed25519PublicKey]:
        return dict(self._public)

    def public_keys_json(self) -> list[dict[str, int | str]]:
        """The manifest's ``keys``: ``[{"kid": 1, "public_key": "<base64url>"}]``, by kid."""
        return [
            {"kid": kid, "public_key": public_key_to_text(key)}
            for kid, key in sorted(self._public.items())
        ]

    def verify(
        self, text: object, now: float, *, ttl: int = TTL_SECONDS, skew: int = SKEW_SECONDS
    ) -> Verdict:
        """``verify_token`` against this ring. An unknown kid re-reads the key directory once,
        because another central process may have rotated since this one loaded."""
        verdict = verify_token(text, self._public, now, ttl=ttl, skew=skew)
        if verdict.reason == R_UNKNOWN_KID and self._key_dir is not None and self.refresh():
            verdict = verify_token(text, self._public, now, ttl=ttl, skew=skew)
        return verdict

    # ----- change -----

    def rotate(self) -> int:
        """Make a new key current (older public keys stay for verification); returns its kid.

        When another process rotates at the same moment, both end on the same new key."""
        if self._key_dir is None:
            raise KeyRingError("signing keys: operator-given keys are rotated by the operator")
        with self._lock:
            self._reload_locked()
            kid = self._current + 1
            if kid > MAX_KID:
                raise KeyRingError(f"signing keys: kid space 1..{MAX_KID} is used up")
            _write_new_key(self._key_dir, kid)
            self._reload_locked()
            logger.info("signing keys: rotated to kid %d", self._current)
            return self._current

    def refresh(self) -> bool:
        """Pick up keys other processes added. True when something changed."""
        if self._key_dir is None:
            return False
        with self._lock:
            before = set(self._keys)
            self._reload_locked()
            return set(self._keys) != before

    def _reload_locked(self) -> None:
        assert self._key_dir is not None
        keys = _read_dir(self._key_dir)
        if keys:
            self._keys = keys
            self._index()

    def _index(self) -> None:
        # swap whole dicts so a reader on another thread never sees a half-built one
        self._public = {kid: key.public_key() for kid, key in self._keys.items()}
        self._current = max(self._keys)


def _check_kid(kid: object) -> None:
    if not isinstance(kid, int) or isinstance(kid, bool) or not FIRST_KID <= kid <= MAX_KID:
        raise KeyRingError(f"signing keys: kid must be an integer {FIRST_KID}..{MAX_KID}")


def _parse_pem(data: bytes, what: str, password: bytes | None = None) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise KeyRingError(f"{what}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyRingError(f"{what}: must be an Ed25519 key (got {type(key).__name__})")
    return key


def _read_dir(key_dir: Path) -> dict[int, Ed25519PrivateKey]:
    keys: dict[int, Ed25519PrivateKey] = {}
    for path in sorted(key_dir.iterdir()):
        match = _KEY_FILE.fullmatch(path.name)
        if match is None:
            continue
        kid = int(match.group(1))
        if not FIRST_KID <= kid <= MAX_KID:
            raise KeyRingError(f"signing keys: {path}: kid out of range {FIRST_KID}..{MAX_KID}")
        if path.stat().st_mode & 0o077:
            logger.warning("signing keys: %s is readable by others; it should be 0600", path)
        keys[kid] = _parse_pem(path.read_bytes(), f"signing keys: {path}")
    return keys


def _write_new_key(key_dir: Path, kid: int) -> bool:
    """Create ``kid-NNN.pem`` unless it exists. False when another process got there first."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    final = key_dir / f"kid-{kid:03d}.pem"
    temp = key_dir / f".kid-{kid:03d}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask: a private key is for the owner only
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, final)  # atomic and never overwrites: readers see all or nothing
        except FileExistsError:
            return False
        return True
    finally:
        temp.unlink(missing_ok=True)
