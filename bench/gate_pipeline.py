"""Gate pipeline benchmark (issue 5 item 9): frames/s on empty frames, and frame-to-verdict latency
(p50/p99) for each decoder at 640x480 and 1280x720, online (a real central on loopback) and
offline (manifest only). Prints one JSON object; figures go to docs/benchmarks.md.

    .venv/bin/python bench/gate_pipeline.py [--trials 40] [--seconds 3] [--skip-online]
    .venv/bin/python bench/gate_pipeline.py --preview-only [--seconds 5]
    .venv/bin/python bench/gate_pipeline.py --quick   # seconds: every part, 3 trials, 640x480

The preview run (issue 7 item 3) measures decoded frames/s of one running gate, unpaced camera with
a code in view, without a dashboard MJPEG client, with one attached, and without again; the ratio
is with / mean(without).

Where the time goes is printed too: decode of a frame with a code, the local token check, the
outbox commit (fsync) and the central verify round trip, each timed on its own."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from central.local_processes import CentralProcess, free_port, make_venue  # noqa: E402
from central.progress import Progress  # noqa: E402
from central.signing import KeyRing  # noqa: E402
from gate_agent.agent import GateAgent  # noqa: E402
from gate_agent.config import load_config  # noqa: E402
from gate_agent.outbox import Outbox, ScanRecord  # noqa: E402
from gate_agent.pipeline import Pipeline  # noqa: E402
from hardware.decode import make_decoder, usable_decoders  # noqa: E402
from hardware.fake_sources import SyntheticSource  # noqa: E402
from hardware.frames import blank_frame  # noqa: E402
from hardware.indicators import FakeIndicator  # noqa: E402
from hardware.qr_render import render_qr_frame  # noqa: E402
from proto.ticket_token import verify_token  # noqa: E402

logger = logging.getLogger(__name__)
SIZES = ((640, 480), (1280, 720))
DECODERS = ("zxing", "pyzbar")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)


def empty_fps(decoder_name: str, size: tuple[int, int], seconds: float) -> dict[str, float]:
    decoder = make_decoder(decoder_name)
    frame = blank_frame(*size)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        decoder.decode(frame)
        n += 1
    raw = n / (time.perf_counter() - start)
    # the same through the pipeline: unpaced capture thread, slot, decode thread
    source = SyntheticSource(payload=lambda: None, width=size[0], height=size[1], fps=0)
    pipeline = Pipeline(source, decoder, lambda *a: None)
    pipeline.start()
    time.sleep(0.3)
    before, start = pipeline.decoded_frames, time.perf_counter()
    time.sleep(seconds)
    through = (pipeline.decoded_frames - before) / (time.perf_counter() - start)
    pipeline.stop()
    return {"decoder_only": round(raw, 1), "pipeline": round(through, 1)}


class Shower:
    """The synthetic camera's payload: one code at a time, blank in between."""

    def __init__(self) -> None:
        self.text: str | None = None

    def __call__(self) -> str | None:
        return self.text


def latency_run(agent: GateAgent, shower: Shower, codes: list[str]) -> list[ScanRecord]:
    done: list[ScanRecord] = []
    got = threading.Event()

    def on_scan(record: ScanRecord) -> None:
        done.append(record)
        got.set()

    agent.decider.listeners.append(on_scan)
    for code in codes:
        got.clear()
        shower.text = code
        if not got.wait(10):
            raise RuntimeError("no verdict within 10 s")
        shower.text = None
        time.sleep(agent.config.dedup_s + 0.05)
    agent.decider.listeners.remove(on_scan)
    return done


def make_agent(
    tmp: Path, central: str, token: str, decoder: str, size: tuple[int, int], shower: Shower
) -> GateAgent:
    config = load_config(
        {
            "central": central,
            "device_token": token,
            "pin": "1234",
            "decoder": decoder,
            "data_dir": str(tmp / uuid.uuid4().hex),
            "dedup_s": 0.1,
        },
        environ={},
    )
    source = SyntheticSource(payload=shower, width=size[0], height=size[1], fps=30)
    return GateAgent(config, source=source, indicator=FakeIndicator())


def summarize(records: list[ScanRecord]) -> dict[str, Any]:
    totals = [r.verdict_ms for r in records if r.verdict_ms is not None]
    return {
        "n": len(totals),
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "results": sorted({r.result for r in records}),
        "modes": sorted({r.mode for r in records}),
    }


def offline_latency(tmp: Path, trials: int) -> dict[str, Any]:
    ring = KeyRing({1: Ed25519PrivateKey.generate()})
    event_id = str(uuid.uuid4())
    out: dict[str, Any] = {}
    for decoder in DECODERS:
        for size in SIZES:
            seats = [str(uuid.uuid4()) for _ in range(trials)]
            shower = Shower()
            # nothing listens on this port: the gate stays offline
            agent = make_agent(tmp, "http://127.0.0.1:9", "t", decoder, size, shower)
            agent.manifest.apply(
                {
                    "hall_id": "HALL-A",
                    "keys": ring.public_keys_json(),
                    "events": [{"event_id": event_id, "name": "Bench"}],
                    "seats": [
                        {
                            "seat_id": s,
                            "event_id": event_id,
                            "status": "SOLD",
                            "owner_epoch": 0,
                            "hall_id": "HALL-A",
                            "row": "A",
                            "number": i,
                        }
                        for i, s in enumerate(seats)
                    ],
                }
            )
            agent.start()
            agent.clock.observe(time.time(), time.time(), time.time(), 0.0)
            try:
                records = latency_run(agent, shower, [ring.sign(s, 0, time.time()) for s in seats])
            finally:
                agent.stop()
            out[f"{decoder} {size[0]}x{size[1]}"] = summarize(records)
    return out


def online_latency(tmp: Path, trials: int) -> tuple[dict[str, Any], dict[str, Any]]:
    central = CentralProcess(tmp / "central", args=["--log-level", "WARNING"])
    central.start()
    out: dict[str, Any] = {}
    try:
        configs = [(d, s) for d in DECODERS for s in SIZES]
        venue = make_venue(central, seats=trials * len(configs), credits=100_000)
        for seat in venue.seat_ids:
            venue.buy(seat)
        seats = iter(venue.seat_ids)
        for decoder, size in configs:
            shower = Shower()
            agent = make_agent(tmp, central.url, venue.gate_token, decoder, size, shower)
            agent.start()
            deadline = time.monotonic() + 10
            while not (agent.connectivity.online and agent.clock.known):
                if time.monotonic() > deadline:
                    raise RuntimeError("gate did not come online")
                time.sleep(0.05)
            try:
                codes = [venue.qr(next(seats)) for _ in range(trials)]
                records = latency_run(agent, shower, codes)
                # the bare round trip of a verify (now a DUPLICATE: no check-in write)
                rtts = []
                for code in codes[:10]:
                    t0 = time.perf_counter()
                    agent.client.verify(code, uuid.uuid4().hex, time.time())
                    rtts.append((time.perf_counter() - t0) * 1000)
            finally:
                agent.stop()
            out[f"{decoder} {size[0]}x{size[1]}"] = summarize(records)
            out[f"{decoder} {size[0]}x{size[1]}"]["verify_rtt_p50_ms"] = pct(rtts, 50)
        return out, {"central": central.url}
    finally:
        central.stop()


def breakdown(tmp: Path) -> dict[str, Any]:
    ring = KeyRing({1: Ed25519PrivateKey.generate()})
    code = ring.sign(str(uuid.uuid4()), 0, time.time())
    out: dict[str, Any] = {}
    for decoder_name in DECODERS:
        decoder = make_decoder(decoder_name)
        for size in SIZES:
            frame = render_qr_frame(code, *size)
            times = []
            for _ in range(30):
                t0 = time.perf_counter()
                decoder.decode(frame)
                times.append((time.perf_counter() - t0) * 1000)
            out[f"decode_code_frame {decoder_name} {size[0]}x{size[1]} p50_ms"] = pct(times, 50)
    keys = ring.public_keys()
    t0 = time.perf_counter()
    for _ in range(1000):
        verify_token(code, keys, time.time())
    out["local_check_ms"] = round((time.perf_counter() - t0), 4)  # per call: total s / 1000 * 1000
    outbox = Outbox(tmp / "commit.sqlite3")
    outbox.start()
    commits = []
    for i in range(50):
        record = ScanRecord(str(i), time.time(), code, "SUCCESS", "offline", pending=True)
        t0 = time.perf_counter()
        outbox.record_scan(record)
        commits.append((time.perf_counter() - t0) * 1000)
    outbox.close()
    out["outbox_commit_p50_ms"] = pct(commits, 50)
    out["outbox_commit_p99_ms"] = pct(commits, 99)
    return out


async def _preview_phases(agent: GateAgent, seconds: float) -> dict[str, Any]:
    import aiohttp
    from aiohttp import web

    from gate_agent.server import PREVIEW_FPS, make_dashboard

    runner = web.AppRunner(make_dashboard(agent))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"

    async def decoded_fps() -> float:
        before, start = agent.pipeline.decoded_frames, time.perf_counter()
        await asyncio.sleep(seconds)
        return (agent.pipeline.decoded_frames - before) / (time.perf_counter() - start)

    # alternate without/with, so load from elsewhere on the machine hits both alike
    without: list[float] = []
    with_client: list[float] = []
    preview_rates: list[float] = []
    try:
        await asyncio.sleep(0.5)  # warm up
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            login = await session.post(base + "/api/login", json={"pin": "1234"})
            assert login.status == 200
            for _round in range(3):
                without.append(await decoded_fps())
                resp = await session.get(base + "/api/preview.mjpg")
                assert resp.status == 200, resp.status
                parts = 0

                async def read(resp: aiohttp.ClientResponse = resp) -> None:
                    nonlocal parts
                    async for line in resp.content:
                        if line.startswith(b"--frame"):
                            parts += 1

                reader = asyncio.create_task(read())
                await asyncio.sleep(0.5)
                parts_before, start = parts, time.perf_counter()
                with_client.append(await decoded_fps())
                preview_rates.append((parts - parts_before) / (time.perf_counter() - start))
                reader.cancel()
                resp.close()
            without.append(await decoded_fps())
    finally:
        await runner.cleanup()
    baseline = sum(without) / len(without)
    watched = sum(with_client) / len(with_client)
    return {
        "decoded_fps_without_preview": round(baseline, 1),
        "decoded_fps_with_preview": round(watched, 1),
        "ratio_with_over_without": round(watched / baseline, 3),
        "rounds_without": [round(x, 1) for x in without],
        "rounds_with": [round(x, 1) for x in with_client],
        "preview_frames_per_s": round(sum(preview_rates) / len(preview_rates), 2),
        "preview_fps_bound": PREVIEW_FPS,
    }


def preview_run(tmp: Path, seconds: float) -> dict[str, Any]:
    ring = KeyRing({1: Ed25519PrivateKey.generate()})
    code = ring.sign(str(uuid.uuid4()), 0, time.time())
    out: dict[str, Any] = {}
    for decoder in DECODERS:
        for size in SIZES:
            config = load_config(
                {
                    "central": "http://127.0.0.1:9",  # offline: only the pipeline works
                    "device_token": "t",
                    "pin": "1234",
                    "decoder": decoder,
                    "data_dir": str(tmp / uuid.uuid4().hex),
                },
                environ={},
            )
            # unpaced camera with a ticket in view: decode is the bottleneck, and the preview
            # has a code to outline in every frame
            source = SyntheticSource(payload=lambda: code, width=size[0], height=size[1], fps=0)
            agent = GateAgent(config, source=source, indicator=FakeIndicator())
            agent.start()
            try:
                out[f"{decoder} {size[0]}x{size[1]}"] = asyncio.run(_preview_phases(agent, seconds))
            finally:
                agent.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40, help="scans per configuration (40)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per frame-rate sample (3)")
    parser.add_argument("--skip-online", action="store_true", help="no central, offline only")
    parser.add_argument("--preview-only", action="store_true", help="only the preview run")
    parser.add_argument(
        "--quick", action="store_true", help="seconds: 3 trials, 0.3 s samples, 640x480 only"
    )
    args = parser.parse_args()
    global SIZES, DECODERS
    if args.quick:
        SIZES = SIZES[:1]
        args.trials, args.seconds = 3, 0.3
    DECODERS, skipped = usable_decoders(DECODERS)
    for name, reason in skipped.items():
        print(f"skipped decoder {name}: {reason}", file=sys.stderr)
    if not DECODERS:
        print("no decoder loads on this machine; nothing to measure", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.ERROR)
    # what the run is doing, on stderr as it happens; the figures (JSON) go to stdout
    progress = Progress("gate_pipeline")
    if args.preview_only:
        progress.step("the preview run")
        with tempfile.TemporaryDirectory() as tmp:
            preview = preview_run(Path(tmp), args.seconds)
            print(json.dumps({"preview": preview, "skipped_decoders": skipped}, indent=2))
        return 0
    result: dict[str, Any] = {"skipped_decoders": skipped, "empty_frames_per_s": {}}
    for decoder in DECODERS:
        for size in SIZES:
            key = f"{decoder} {size[0]}x{size[1]}"
            progress.step(f"empty frames per second: {key}")
            result["empty_frames_per_s"][key] = empty_fps(decoder, size, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        progress.step("where a scan's time goes (breakdown)")
        result["breakdown"] = breakdown(Path(tmp))
        progress.step(f"offline latency: {args.trials} scans per configuration")
        result["offline"] = offline_latency(Path(tmp), args.trials)
        progress.step("the preview run")
        result["preview"] = preview_run(Path(tmp), args.seconds)
        if not args.skip_online:
            progress.step(f"online latency (a central): {args.trials} scans per configuration")
            result["online"], _ = online_latency(Path(tmp), args.trials)
    progress.step("done")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
