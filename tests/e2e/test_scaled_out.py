"""Scaled out: every service alone in its own process (`serve --service NAME`), the orchestrator
configured with their addresses. A purchase works across them; one correlation id appears in the
log lines of every service the request touched (REST and gRPC); /health and /metrics answer on
every service; the internal services refuse callers without the internal credential."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
from central_process import ROOT, free_port, run_admin

from proto import inventory_pb2, inventory_pb2_grpc


def start(name: str, args: list[str], data_dir: Path, logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
    cmd = [sys.executable, "-m", "central", "serve", "--data-dir", str(data_dir), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TR_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
    log.close()
    return proc


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy")


def log_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_each_service_alone_behind_one_orchestrator(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    logs = tmp_path / "logs"
    logs.mkdir()
    ports = {
        name: free_port() for name in ("inventory", "users", "orders", "events", "orchestrator")
    }
    health = free_port()
    procs = []
    try:
        run_admin(
            data_dir,
            "create-user",
            "--email",
            "admin@example.com",
            "--password",
            "admin password",
            "--role",
            "admin",
        )
        run_admin(
            data_dir,
            "create-user",
            "--email",
            "buyer@example.com",
            "--password",
            "buyer password",
            "--credits",
            "500",
        )
        procs.append(
            start(
                "inventory",
                [
                    "--service",
                    "inventory",
                    "--port",
                    str(ports["inventory"]),
                    "--health-port",
                    str(health),
                ],
                data_dir,
                logs,
            )
        )
        for name in ("users", "orders", "events"):
            procs.append(
                start(name, ["--service", name, "--port", str(ports[name])], data_dir, logs)
            )
        base = "http://127.0.0.1:"
        procs.append(
            start(
                "orchestrator",
                [
                    "--service",
                    "orchestrator",
                    "--port",
                    str(ports["orchestrator"]),
                    "--users-url",
                    f"{base}{ports['users']}",
                    "--orders-url",
                    f"{base}{ports['orders']}",
                    "--events-url",
                    f"{base}{ports['events']}",
                    "--inventory-addr",
                    f"127.0.0.1:{ports['inventory']}",
                ],
                data_dir,
                logs,
            )
        )
        for url in (
            f"{base}{health}",
            *(f"{base}{ports[n]}" for n in ("users", "orders", "events", "orchestrator")),
        ):
            wait_http(url)
            assert httpx.get(url + "/metrics").status_code == 200
            assert (
                "http_request" in httpx.get(url + "/metrics").text
                or "inventory_rpc" in httpx.get(url + "/metrics").text
            )
        pids = {p.pid for p in procs}
        assert len(pids) == 5 and all(p.poll() is None for p in procs)

        # The internal services refuse a caller without the internal credential.
        for name in ("users", "orders", "events"):
            r = httpx.get(
                f"{base}{ports[name]}/events" if name == "events" else f"{base}{ports[name]}/orders"
            )
            assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHORIZED", name
        with grpc.insecure_channel(f"127.0.0.1:{ports['inventory']}") as channel:
            stub = inventory_pb2_grpc.InventoryStub(channel)
            try:
                stub.VerifyTicket(
                    inventory_pb2.VerifyTicketRequest(
                        seat_id="00000000-0000-4000-8000-000000000000"
                    ),
                    timeout=5,
                )
                raise AssertionError("inventory answered without the credential")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED

        api = f"{base}{ports['orchestrator']}"
        admin = httpx.post(
            api + "/api/auth/login",
            json={"email": "admin@example.com", "password": "admin password"},
        ).json()["data"]["access_token"]
        event = httpx.post(
            api + "/api/admin/events",
            headers={"Authorization": f"Bearer {admin}"},
            json={
                "name": "Split Show",
                "venue": {"name": "V"},
                "hall_id": "HALL-A",
                "event_date": "2099-05-01T20:00:00Z",
                "pricing": {"STD": 100},
                "seats": {"rows": 1, "seats_per_row": 2},
            },
            timeout=30,
        ).json()["data"]
        buyer = httpx.post(
            api + "/api/auth/login",
            json={"email": "buyer@example.com", "password": "buyer password"},
        ).json()["data"]["access_token"]
        cid = "corr-scaled-out-42"
        headers = {"Authorization": f"Bearer {buyer}", "X-Correlation-ID": cid}
        r = httpx.post(
            api + "/api/reserve",
            json={"seat_id": event["seat_ids"][0]},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.headers["X-Correlation-ID"] == cid
        r = httpx.post(
            api + "/api/pay",
            json={"order_id": r.json()["data"]["order_id"]},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["data"]["status"] == "CONFIRMED", r.text

        time.sleep(0.5)  # let the children flush their log lines
        for name in ("orchestrator", "users", "orders", "events", "inventory"):
            mine = [
                line
                for line in log_lines(logs / f"{name}.log")
                if line.get("correlation_id") == cid
            ]
            assert mine, f"no log line with the correlation id in {name}"
            assert all(line["service"] == name for line in mine), (
                name,
                {m["service"] for m in mine},
            )
        grpc_lines = [
            m for m in log_lines(logs / "inventory.log") if m.get("correlation_id") == cid
        ]
        assert {m.get("method") for m in grpc_lines} >= {"ReserveSeat", "ConfirmSeat"}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
