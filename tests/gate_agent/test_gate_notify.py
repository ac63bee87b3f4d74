"""Issue 5 item 7 (notify): against a fake NOTIFY_SOCKET the agent sends READY=1 after start and
WATCHDOG=1 while healthy, and no ping while its pipeline is stalled."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate_agent.agent import GateAgent
from gate_agent.config import load_config
from gate_agent.notify import Watchdog, notify, watchdog_interval
from hardware.frames import Frame, FrameSource, blank_frame
from hardware.indicators import FakeIndicator
from tests.gate_agent.central_proc import PYTHON, REPO, free_port


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    yield sock, path
    sock.close()


def received(sock: socket.socket, seconds: float) -> list[str]:
    out: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(sock.recv(1024).decode())
        except TimeoutError:
            continue
    return out


def test_agent_process_sends_ready_then_watchdog_pings(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gate_agent",
            "run",
            "--central",
            f"http://127.0.0.1:{free_port()}",
            "--device-token",
            "t",
            "--pin",
            "1234",
            "--camera",
            "synthetic",
            "--data-dir",
            str(tmp_path / "gate"),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(free_port()),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        messages = received(sock, 8)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "READY=1" in messages, err[-2000:]
    ready = messages.index("READY=1")
    pings = messages[ready + 1 :].count("WATCHDOG=1")
    assert pings >= 3, messages
    assert "WATCHDOG=1" not in messages[:ready]  # nothing before the agent is up
    assert proc.returncode == 0


class StallingSource(FrameSource):
    """A camera whose read() hangs once stall is set, as a wedged driver does."""

    name = "stalling"

    def __init__(self) -> None:
        self.stall = threading.Event()
        self.release = threading.Event()

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.stall.is_set():
            self.release.wait()
        time.sleep(0.01)
        return blank_frame(64, 48)

    def close(self) -> None:
        self.release.set()


def test_no_ping_while_the_pipeline_is_stalled(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    config = load_config(
        {
            "device_token": "t",
            "pin": "1234",
            "central": f"http://127.0.0.1:{free_port()}",
            "data_dir": str(tmp_path / "gate"),
            "stall_s": 0.5,
        },
        environ={},
    )
    source = StallingSource()
    agent = GateAgent(config, source=source, indicator=FakeIndicator())
    agent.start()
    watchdog = Watchdog(agent.healthy, environ={"NOTIFY_SOCKET": path})
    try:
        time.sleep(0.2)
        assert watchdog.tick() is True
        assert received(sock, 0.3) == ["WATCHDOG=1"]
        source.stall.set()
        time.sleep(1.0)  # longer than stall_s
        assert watchdog.tick() is False
        assert received(sock, 0.3) == []
        source.stall.clear()
        source.release.set()
        time.sleep(0.3)
        assert watchdog.tick() is True  # recovered: pings resume
        assert received(sock, 0.3) == ["WATCHDOG=1"]
    finally:
        source.release.set()
        agent.stop()


def test_notify_without_socket_and_interval() -> None:
    assert notify("READY=1", environ={}) is False
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({}, default=2.0) == 2.0
