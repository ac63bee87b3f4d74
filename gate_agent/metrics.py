"""GET /metrics on the gate: Prometheus text read from the agent at scrape time (no counters of
our own to keep in step): worker restarts, frames, codes, verdicts, connectivity. Open like
central's /metrics — it carries counts only, no ticket data — so a venue's Prometheus can scrape
it without the staff PIN."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gate_agent.agent import GateAgent


class GateCollector(Collector):
    def __init__(self, agent: GateAgent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        restarts = CounterMetricFamily(
            "gate_worker_restarts",
            "Times the in-process watchdog restarted a dead worker thread",
            labels=["worker"],
        )
        alive = GaugeMetricFamily(
            "gate_worker_alive", "1 while the worker thread runs", labels=["worker"]
        )
        for name, worker in agent.supervisor.workers.items():
            restarts.add_metric([name], worker.restarts)
            running = worker.thread is not None and worker.thread.is_alive()
            alive.add_metric([name], 1.0 if running else 0.0)
        yield restarts
        yield alive
        online = GaugeMetricFamily("gate_online", "1 while central answers")
        online.add_metric([], 1.0 if agent.connectivity.online else 0.0)
        yield online
        pipeline = getattr(agent, "pipeline", None)
        if pipeline is None:
            return
        stats = pipeline.stats()
        for key, help_text in (
            ("frames_captured", "Frames the camera delivered"),
            ("frames_dropped", "Frames replaced by a newer one before decoding"),
            ("frames_decoded", "Frames the decoder looked at"),
            ("codes_seen", "Codes found in frames (a code held in view counts per frame)"),
            ("verdicts", "Codes judged from the camera"),
        ):
            family = CounterMetricFamily(f"gate_{key}", help_text)
            family.add_metric([], float(stats[key]))
            yield family
        camera = GaugeMetricFamily("gate_camera_ok", "1 while the camera delivers frames")
        camera.add_metric([], 1.0 if stats["camera_ok"] else 0.0)
        yield camera


METRICS: web.AppKey[CollectorRegistry] = web.AppKey("gate_metrics", CollectorRegistry)


def attach_metrics(app: web.Application, agent: GateAgent) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GateCollector(agent))
    app[METRICS] = registry
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    payload = generate_latest(request.app[METRICS])
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})
