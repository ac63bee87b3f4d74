"""One decoded code to one verdict: local token checks, then central (short timeout, the scan id),
else the offline decision; then the outbox commit, and only then the light, buzzer and relay."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from gate_agent.central_client import (
    CentralAuthError,
    CentralClient,
    CentralRejected,
    CentralRevoked,
    CentralUnavailable,
)
from gate_agent.clock import CentralClock
from gate_agent.outbox import Outbox, ScanRecord
from gate_agent.revocation import Revocation
from gate_agent.sync import Connectivity
from gate_agent.verifier import (
    LOCAL_REJECTIONS,
    MESSAGES,
    Decision,
    Manifest,
    decide_offline,
    local_check,
    seat_view,
)
from hardware.indicators import Indicator
from proto.gate_api import VerifyAnswer
from proto.short_code import normalize_short_code

logger = logging.getLogger(__name__)

ScanListener = Callable[[ScanRecord], None]
SHORT_CODE_OFFLINE = "Short codes need central, which is not reachable: scan the QR code"

DISABLED = "DISABLED"  # the gate's own verdict while revoked: nobody is admitted here
DISABLED_MESSAGE = "Gate disabled by the organiser: do not admit, send to another gate"


class Decider:
    def __init__(
        self,
        *,
        manifest: Manifest,
        outbox: Outbox,
        indicator: Indicator,
        clock: CentralClock,
        connectivity: Connectivity,
        client: CentralClient | None,
        hall_id: str | None = None,
        revocation: Revocation | None = None,
    ) -> None:
        self.manifest, self.outbox, self.indicator = manifest, outbox, indicator
        self.clock, self.connectivity, self.client = clock, connectivity, client
        self.hall_id = hall_id
        self.revocation = revocation
        # seats this gate admitted (online or offline), mirrored from the outbox for speed
        self.admitted: set[str] = set(outbox.admissions())
        self.listeners: list[ScanListener] = []
        self._lock = threading.Lock()  # one decision at a time: the admitted set stays exact
        self.last_decision_ms: dict[str, float] = {}

    def handle(
        self, text: str, captured_wall: float, captured_mono: float, source: str = "camera"
    ) -> ScanRecord:
        """source says how the code arrived (camera, or typed in by staff: manual); the verdict
        path is the same for both, so a typed code can never be judged more leniently."""
        with self._lock:
            record = self._decide(text, captured_wall, captured_mono)
            # on disk before the relay pulses (ARCHITECTURE §7): a power cut after the turnstile
            # turned can never lose the entry
            self.outbox.record_scan(record)
            if record.admitted and record.seat and record.seat.get("seat_id"):
                self.admitted.add(str(record.seat["seat_id"]))
            self.indicator.show(record.result, admitted=record.admitted)
            record.verdict_ms = (time.monotonic() - captured_mono) * 1000
        logger.info(
            "scan judged",
            extra={
                "fields": {
                    "scan_id": record.scan_id,
                    "result": record.result,
                    "mode": record.mode,
                    "source": source,
                }
            },
        )
        for listener in list(self.listeners):
            try:
                listener(record)
            except Exception:
                logger.exception("scan listener failed")
        return record

    def _decide(self, text: str, captured_wall: float, captured_mono: float) -> ScanRecord:
        scan_id = str(uuid.uuid4())
        at = self.clock.to_central(captured_wall)
        short = normalize_short_code(text)
        if short is not None:
            text = short
        keys = self.manifest.keys
        verdict = local_check(text, keys, at, clock_known=self.clock.known) if keys else None

        def record(decision: Decision, mode: str, *, local: bool, pending: bool) -> ScanRecord:
            latency = (time.monotonic() - captured_mono) * 1000
            self.last_decision_ms[mode] = latency
            return ScanRecord(
                scan_id=scan_id,
                at=at,
                qr_payload=text,
                result=decision.result,
                mode=mode,
                message=decision.message,
                local=local,
                seat=decision.seat,
                latency_ms=latency,
                # central must hear of everything the gate decided alone (its entry log keeps
                # every scan); what central decided itself it already has
                pending=pending,
            )

        def disabled(mode: str = "offline") -> ScanRecord:
            # kept in the outbox like every scan; nothing to upload: central refuses this gate.
            # "online" when central's answer to this very scan said so, else the gate's own call
            seat = seat_view(None, verdict.claims.seat_id if verdict and verdict.claims else None)
            decision = Decision(DISABLED, DISABLED_MESSAGE, seat)
            return record(decision, mode, local=mode == "offline", pending=False)

        if self.revocation is not None and self.revocation.disabled:
            return disabled()

        def ask_central(what: str) -> ScanRecord | None:
            """Central's verdict on this scan; None when central could not be asked."""
            assert self.client is not None
            try:
                data = self.client.verify(text, scan_id, at)
            except CentralRevoked as exc:
                # central answered, and its answer is "not you": never decide offline now
                self.connectivity.record(True)
                if self.revocation is not None:
                    self.revocation.revoke(str(exc))
                return disabled("online")
            except (CentralUnavailable, CentralAuthError, CentralRejected) as exc:
                self.connectivity.record(False)
                logger.warning(
                    f"central verify of {what} failed",
                    extra={"fields": {"scan_id": scan_id, "error": str(exc)[:200]}},
                )
                return None
            self.connectivity.record(True)
            if self.revocation is not None:
                self.revocation.restore()
            decision = _from_central(data, self.manifest.gate_id)
            return record(decision, "online", local=False, pending=False)

        if short is not None:
            # only central knows which QR a short code stands for: ask it even when the link
            # looked down (a person typed this, a second's wait is fine); without central the
            # staff need the QR itself
            answered = ask_central("a short code") if self.client is not None else None
            if answered is not None:
                return answered
            decision = Decision("INVALID", SHORT_CODE_OFFLINE)
            return record(decision, "offline", local=True, pending=True)

        if verdict is not None and verdict.result in LOCAL_REJECTIONS:
            seat = seat_view(
                self.manifest.seats.get(verdict.claims.seat_id) if verdict.claims else None,
                verdict.claims.seat_id if verdict.claims else None,
            )
            decision = Decision(verdict.result, MESSAGES[verdict.result], seat)
            # judged on the gate (no need to ask central about a bad signature or an old code),
            # but the gate is online: staff must not read it as a lost connection
            mode = "online" if self.connectivity.online else "offline"
            return record(decision, mode, local=True, pending=True)

        if self.client is not None and (self.connectivity.online or verdict is None):
            answered = ask_central("a code")
            if answered is not None:
                return answered

        if verdict is None:
            # no keys synced yet: nothing can be admitted without central
            decision = Decision("INVALID", "Gate not synced yet: no signing keys")
            return record(decision, "offline", local=True, pending=True)
        assert verdict.claims is not None
        decision = decide_offline(
            verdict.claims, self.manifest, self.admitted, at, hall_id=self.hall_id
        )
        return record(decision, "offline", local=False, pending=True)


def _from_central(data: VerifyAnswer, own_gate_id: str | None = None) -> Decision:
    result = data.result
    seat = data.seat.to_json() if data.seat is not None else None
    event = data.event.to_json() if data.event is not None else None
    message = data.message or MESSAGES.get(result, result)
    first_gate = data.checked_in_gate_id
    if result == "DUPLICATE" and first_gate:
        # the staff's first question when someone argues: was it here, or at another gate?
        where = "this gate" if first_gate == own_gate_id else f"gate {first_gate[:8]}"
        message = f"{message} ({where})"
    return Decision(result, message, seat_view(seat, None) if seat else None, event)
