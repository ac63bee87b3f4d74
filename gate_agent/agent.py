"""The gate agent's parts wired together: outbox, manifest, central client, sync, decider,
pipeline. `run` and the tests build one of these; the dashboard reads its status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gate_agent.central_client import CentralClient
from gate_agent.clock import CentralClock
from gate_agent.config import GateConfig
from gate_agent.decider import Decider
from gate_agent.outbox import Outbox
from gate_agent.pipeline import Pipeline
from gate_agent.revocation import Revocation
from gate_agent.scanner_input import ScannerInput
from gate_agent.supervisor import Supervisor
from gate_agent.sync import Connectivity, SyncWorker
from gate_agent.verifier import Manifest
from hardware.camera import open_source
from hardware.decode import Decoder, make_decoder
from hardware.frames import FrameSource
from hardware.indicators import Indicator, make_indicator
from hardware.scanners import CodeReader, open_scanner
from hardware.second_pass import HardFrameDecoder

logger = logging.getLogger(__name__)

_SIZED = ("v4l2", "picamera2", "dir", "synthetic")


def build_source(config: GateConfig) -> FrameSource:
    """Raises CameraError for a spec that can never work (a config error, not a missing camera)."""
    kind = config.camera.partition(":")[0].lower()
    opts: dict[str, Any] = {}
    if kind in _SIZED:
        opts = {"width": config.camera_width, "height": config.camera_height}
    return open_source(config.camera, **opts)


def build_decoder(config: GateConfig) -> Decoder:
    fast = make_decoder(config.decoder)
    if config.second_pass_ms <= 0:
        return fast
    return HardFrameDecoder(fast, budget_ms=config.second_pass_ms)


def build_scanners(config: GateConfig) -> list[CodeReader]:
    return [open_scanner(spec) for spec in config.scanner.split(",") if spec.strip()]


class GateAgent:
    def __init__(
        self,
        config: GateConfig,
        *,
        source: FrameSource | None = None,
        decoder: Decoder | None = None,
        indicator: Indicator | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = CentralClock(wall)
        # build everything that validates config first, so a bad value fails before any thread
        self.source = source if source is not None else build_source(config)
        self.decoder = decoder if decoder is not None else build_decoder(config)
        self.indicator = indicator if indicator is not None else make_indicator(config.indicator)
        self.scanners = build_scanners(config)
        # restarts the capture, decode and scanner threads when one dies, and counts it
        self.supervisor = Supervisor()
        self.scanner_inputs: list[ScannerInput] = []
        self.outbox = Outbox(config.data_dir / "gate.sqlite3")
        self.manifest = Manifest()
        self.connectivity = Connectivity()
        self.started_at = time.time()
        self._parts_started = False

    def start(self) -> None:
        cfg = self.config
        self.outbox.start()
        # before anything can scan: a gate revoked before a restart starts disabled
        self.revocation = Revocation(self.outbox, cfg.device_token, self.indicator)
        saved = self.outbox.get_meta("manifest")
        if saved:
            # offline from the first second after a restart: the last manifest is on disk
            self.manifest.apply(saved)
        self.client = CentralClient(
            cfg.central,
            cfg.device_token,
            self.clock,
            timeout=cfg.verify_timeout_s,
            ca_file=cfg.ca_file,
        )
        self.sync_client = CentralClient(
            cfg.central,
            cfg.device_token,
            self.clock,
            timeout=cfg.verify_timeout_s,
            ca_file=cfg.ca_file,
        )
        self.decider = Decider(
            manifest=self.manifest,
            outbox=self.outbox,
            indicator=self.indicator,
            clock=self.clock,
            connectivity=self.connectivity,
            client=self.client,
            revocation=self.revocation,
        )
        self.sync = SyncWorker(
            self.sync_client,
            self.outbox,
            self.manifest,
            self.connectivity,
            sync_interval_s=cfg.sync_interval_s,
            upload_interval_s=cfg.upload_interval_s,
            backoff_max_s=cfg.backoff_max_s,
            revocation=self.revocation,
        )
        self.outbox.on_pending = self.sync.kick
        # back online: upload at once rather than at the next tick
        self.connectivity.on_change = lambda online: self.sync.kick() if online else None
        self.pipeline = Pipeline(
            self.source,
            self.decoder,
            self.decider.handle,
            dedup_s=cfg.dedup_s,
            wall=self.clock.wall,
            supervisor=self.supervisor,
        )
        self.sync.start()
        self.pipeline.start()
        for reader in self.scanners:
            scanner = ScannerInput(reader, self.decider.handle, wall=self.clock.wall)
            self.scanner_inputs.append(scanner)
            self.supervisor.add(reader.name, scanner.run, stopped=scanner.is_stopped)
        self._parts_started = True
        logger.info(
            "gate agent started",
            extra={"fields": {"camera": self.source.name, "central": cfg.central}},
        )

    def stopping(self) -> None:
        """The gate is about to stop: syncing ends after its round in flight (stop() waits)."""
        if self._parts_started:
            self.sync.request_stop()

    def stop(self) -> None:
        if self._parts_started:
            for scanner in self.scanner_inputs:
                scanner.stop()
            self.pipeline.stop()
            self.supervisor.stop()
            self.sync.stop()
            self.client.close()
            self.sync_client.close()
            self._parts_started = False
        self.indicator.close()
        self.outbox.close()

    def healthy(self) -> bool:
        return self._parts_started and self.pipeline.healthy(self.config.stall_s)

    @property
    def disabled(self) -> bool:
        revocation = getattr(self, "revocation", None)
        return revocation is not None and revocation.disabled

    def status(self, counts: dict[str, Any] | None = None) -> dict[str, Any]:
        """counts: the outbox's, when the caller (the event loop) already awaited them."""
        counts = self.outbox.counts() if counts is None else counts
        revocation = getattr(self, "revocation", None)
        revoked = revocation.status() if revocation is not None else {"disabled": False}
        online = self.connectivity.online
        return {
            "gate_id": self.manifest.gate_id,
            "gate_name": self.manifest.gate_name,
            "hall_id": self.manifest.hall_id,
            # one word for the banner: a revoked gate is "disabled", whatever the network does
            "state": "disabled" if revoked["disabled"] else "online" if online else "offline",
            "disabled": revoked["disabled"],
            "disabled_since": revoked.get("since"),
            "disabled_reason": revoked.get("reason"),
            "online": online,
            "last_sync_at": self.sync.last_sync_at if self._parts_started else None,
            "backlog": counts["backlog"],
            "counts": counts,
            "clock_offset_s": self.clock.status()["offset_s"],
            "clock_measured": self.clock.known,
            "manifest": {"seats": len(self.manifest.seats), "keys": len(self.manifest.keys)},
            "pipeline": self.pipeline.stats() if self._parts_started else None,
            "scanners": [s.stats() for s in self.scanner_inputs],
            "workers": self.supervisor.stats(),
            "restarts": sum(self.supervisor.restarts().values()),
            "last_error": self.sync.last_error if self._parts_started else None,
        }
