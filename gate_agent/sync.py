"""Keeps the gate in step with central off the scan path: pulls the manifest, uploads what the
gate decided on its own, and judges whether central is reachable.

Online/offline has hysteresis (two failures in a row to go offline, two successes to come back),
so one lost packet does not flip the lane, and an offline lane does not wait out a timeout per
scan. Retries back off exponentially with full jitter, so gates that lost central together do not
hammer it together when it returns."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gate_agent.central_client import (
    CentralAuthError,
    CentralClient,
    CentralRejected,
    CentralRevoked,
    CentralUnavailable,
)
from gate_agent.outbox import Outbox, ScanRecord
from gate_agent.revocation import Revocation
from gate_agent.verifier import Manifest
from proto.gate_api import ADMITTED, REJECTED, CheckinAnswer, CheckinItem, GateMessageError

logger = logging.getLogger(__name__)

UPLOAD_BATCH = 100


class Connectivity:
    def __init__(
        self,
        *,
        fail_threshold: int = 2,
        ok_threshold: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.online = False  # until central has answered
        self.clock = clock  # wall time of changed_at; injectable so tests need not sleep
        self.fail_threshold, self.ok_threshold = fail_threshold, ok_threshold
        self._fails = self._oks = 0
        self._answered = False
        self._lock = threading.Lock()
        self.changed_at = self.clock()
        self.on_change: Callable[[bool], None] | None = None

    def record(self, ok: bool) -> None:
        with self._lock:
            before = self.online
            if ok:
                self._oks, self._fails = self._oks + 1, 0
                # the very first answer proves central is there; no need to wait for a second
                if not self.online and (self._oks >= self.ok_threshold or not self._answered):
                    self.online = True
                self._answered = True
            else:
                self._fails, self._oks = self._fails + 1, 0
                if self.online and self._fails >= self.fail_threshold:
                    self.online = False
            changed = before != self.online
            if changed:
                self.changed_at = self.clock()
        if changed:
            if self.online:
                logger.info("central reachable")
            else:
                logger.warning("central unreachable: deciding from the manifest")
            if self.on_change is not None:
                self.on_change(self.online)


def upload_item(scan: ScanRecord) -> CheckinItem:
    """The upload of one scan the gate decided alone. GateMessageError when the scan cannot be
    told to central at all (e.g. an empty code): central would refuse it whatever the retry."""
    return CheckinItem.make(
        scan_id=scan.scan_id,
        qr_payload=scan.qr_payload[:1000],
        scanned_at=datetime.fromtimestamp(scan.at, UTC),
        decision=ADMITTED if scan.admitted else REJECTED,
        result=scan.result,
    )


class SyncWorker:
    def __init__(
        self,
        client: CentralClient,
        outbox: Outbox,
        manifest: Manifest,
        connectivity: Connectivity,
        *,
        sync_interval_s: float = 5.0,
        upload_interval_s: float = 1.0,
        backoff_max_s: float = 4.0,
        on_manifest: Callable[[], None] | None = None,
        revocation: Revocation | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.revocation = revocation
        self.monotonic = monotonic  # schedules manifest pulls; injectable so tests need not sleep
        self.client, self.outbox, self.manifest = client, outbox, manifest
        self.connectivity = connectivity
        self.sync_interval_s = sync_interval_s
        self.upload_interval_s = upload_interval_s
        self.backoff_max_s = backoff_max_s
        self.on_manifest = on_manifest
        self.last_sync_at: float | None = None
        self.last_error: str | None = None
        self.uploaded = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        # a failed round's log line and the stop request exclude each other: once stopping is
        # requested (and the gate has said "gate stopping"), no "retrying" line follows it
        self._stopping = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next_manifest = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the round in flight, without waiting for it."""
        with self._stopping:
            self._stop.set()
        self._wake.set()

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def kick(self) -> None:
        """Something new waits for upload: do not wait for the next tick."""
        self._wake.set()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self.run_once()
                attempt = 0
                delay = self.upload_interval_s
                self.last_error = None
            except CentralRevoked as exc:
                # central is there and says this gate is revoked: that is not "offline"
                self.connectivity.record(True)
                self.last_error = str(exc)
                if self.revocation is not None:
                    self.revocation.revoke(str(exc))
                # keep asking now and then: the operator may enable the gate again
                delay = self.backoff_max_s
            except (CentralUnavailable, CentralAuthError) as exc:
                with self._stopping:
                    if self._stop.is_set():
                        break  # the call failed because the gate is stopping: nothing to retry
                    logger.info(
                        "sync failed, retrying", extra={"fields": {"error": str(exc)[:200]}}
                    )
                self.connectivity.record(False)
                self.last_error = str(exc)
                attempt += 1
                delay = random.uniform(0, min(self.backoff_max_s, 0.25 * 2**attempt))
            except Exception:  # a bug here must not end syncing for the rest of the day
                logger.exception("sync round failed")
                attempt += 1
                delay = self.backoff_max_s
            self._wake.wait(delay)
            self._wake.clear()

    def run_once(self) -> None:
        if self.monotonic() >= self._next_manifest or not self.connectivity.online:
            self.pull_manifest()
        self.upload_pending()

    def pull_manifest(self) -> None:
        for _page in range(1000):  # a bound, so a broken peer cannot keep us paging forever
            answer = self.client.manifest(self.manifest.cursor)
            self.connectivity.record(True)
            if self.revocation is not None:
                self.revocation.restore()
            try:
                self.manifest.apply(answer.to_json())
            except ValueError as exc:  # e.g. a public key that does not parse
                raise CentralUnavailable(f"manifest: malformed ({exc})") from exc
            self.outbox.set_meta("manifest", self.manifest.as_rows())
            self.last_sync_at = time.time()
            if self.on_manifest is not None:
                self.on_manifest()
            if not answer.more:
                break
        self._next_manifest = self.monotonic() + self.sync_interval_s

    def upload_pending(self) -> None:
        while not self._stop.is_set():
            batch = self.outbox.pending(UPLOAD_BATCH)
            if not batch:
                return
            outcomes: list[tuple[str, str, str | None]] = []
            sendable: list[tuple[ScanRecord, CheckinItem]] = []
            for scan in batch:
                try:
                    sendable.append((scan, upload_item(scan)))
                except GateMessageError as exc:
                    outcomes.append(self._refused(scan, str(exc)))
            answers: list[CheckinAnswer] = []
            if sendable:
                try:
                    answers = self.client.checkins([item for _, item in sendable])
                except CentralRejected as exc:
                    # one poisoned item must not block the queue: retry one by one
                    logger.warning(
                        "batch refused, uploading one by one",
                        extra={"fields": {"error": str(exc)}},
                    )
                    for scan, item in sendable:
                        try:
                            answers += self.client.checkins([item])
                        except CentralRejected as one:
                            outcomes.append(self._refused(scan, str(one)))
            self.connectivity.record(True)
            known = {s.scan_id for s in batch}
            outcomes += [(a.scan_id, a.outcome, a.result) for a in answers if a.scan_id in known]
            self.outbox.mark_uploaded(outcomes)
            self.uploaded += len(outcomes)
            for scan_id, outcome, result in outcomes:
                level = logging.WARNING if outcome == "CONFLICT" else logging.INFO
                logger.log(
                    level,
                    "upload acknowledged",
                    extra={"fields": {"scan_id": scan_id, "outcome": outcome, "result": result}},
                )
            if len({o[0] for o in outcomes}) < len(batch):
                # central skipped some: leave them for the next round instead of spinning
                return

    @staticmethod
    def _refused(scan: ScanRecord, error: str) -> tuple[str, str, str | None]:
        """An item central will never accept as it is: kept as REJECTED, never retried."""
        logger.error(
            "central refused an upload item; kept as REJECTED",
            extra={"fields": {"scan_id": scan.scan_id, "error": error[:200]}},
        )
        return (scan.scan_id, "REJECTED", None)
