"""Whether this gate was revoked by the operator (central answered 401 GATE_REVOKED).

A revoked gate is not offline: it admits nobody, from central or from its manifest, and says so
on its lights and its dashboard. The state is kept in the outbox beside the token it belongs to,
so a restart while central is unreachable stays disabled, while a gate given a new device token
starts afresh. Central accepting the token again (the operator re-enabled the gate) clears it."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gate_agent.outbox import Outbox
from hardware.indicators import Indicator

logger = logging.getLogger(__name__)

META_KEY = "revoked"


def _token_id(device_token: str) -> str:
    return hashlib.sha256(device_token.encode()).hexdigest()


class Revocation:
    def __init__(self, outbox: Outbox, device_token: str, indicator: Indicator) -> None:
        self.outbox = outbox
        self.indicator = indicator
        self._token_id = _token_id(device_token)
        self._lock = threading.Lock()
        self.since: float | None = None
        self.reason: str | None = None
        self.on_change: Callable[[bool], None] | None = None
        saved = outbox.get_meta(META_KEY)
        if isinstance(saved, dict) and saved.get("token_sha256") == self._token_id:
            self.since = float(saved.get("since") or time.time())
            self.reason = str(saved.get("reason") or "revoked by the operator")
            indicator.set_disabled(True)
            logger.warning("gate starts disabled: its device token was revoked")

    @property
    def disabled(self) -> bool:
        return self.since is not None

    def revoke(self, reason: str) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since, self.reason = time.time(), reason
            # on disk first: a crash right after must not bring the gate back admitting
            self.outbox.set_meta(
                META_KEY,
                {"token_sha256": self._token_id, "since": self.since, "reason": reason},
            )
        logger.error("gate disabled: central revoked its device token (%s)", reason)
        self.indicator.set_disabled(True)
        self._changed(True)

    def restore(self) -> None:
        """Central accepted the token again: the operator re-enabled this gate."""
        with self._lock:
            if self.since is None:
                return
            self.since = self.reason = None
            self.outbox.set_meta(META_KEY, None)
        logger.warning("gate enabled again: central accepts its device token")
        self.indicator.set_disabled(False)
        self._changed(False)

    def _changed(self, disabled: bool) -> None:
        if self.on_change is not None:
            try:
                self.on_change(disabled)
            except Exception:
                logger.exception("revocation listener failed")

    def status(self) -> dict[str, Any]:
        return {"disabled": self.disabled, "since": self.since, "reason": self.reason}
