"""Runs the documented commands of one document in a fresh clone (rules: tests/docs/documented.py)
and keeps, per command, what ran, its exit status and its output."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from central.local_processes import free_port
from tests.docs.documented import FILLED_FROM, PLACEHOLDER, Step, optional_variants
from tests.docs.quick_runs import PARSE_ONLY, PARSED, quick_overrides, same_run_key

POSTGRES_URL = os.environ.get("TR_TEST_POSTGRES_URL")
AMQP_URL = os.environ.get("TR_TEST_AMQP_URL")
ONE_SHOT_TIMEOUT_S = 300
HEALTHY_TIMEOUT_S = 120
DEFAULT_PORTS = {"serve": 8000, "dashboard": 8080, "inventory_health": 8104}


@dataclass
class Outcome:
    step: Step
    argv: list[str]
    status: str  # "ok", "ok (same run as #N under --quick)", "FAILED", "skipped: …", "not run: …"
    exit_code: int | None = None
    seconds: float = 0.0
    output: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAILED"


@dataclass
class _Running:
    outcome: Outcome
    proc: subprocess.Popen[bytes]
    log: Path
    health_url: str
    started: float


@dataclass
class DocumentRun:
    clone: Path
    work: Path
    outcomes: list[Outcome] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)
    printed: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    database_prefix: str = field(default_factory=lambda: f"trdoc{uuid.uuid4().hex[:8]}")
    background: list[_Running] = field(default_factory=list)
    block: int = -1
    # a bench run that went well -> its number in the report (tests/docs/quick_runs.py)
    quick_runs: dict[tuple[object, ...], int] = field(default_factory=dict)

    # -- making a documented command runnable ------------------------------------------------

    def port(self, documented: int) -> int:
        if documented not in self.ports:
            self.ports[documented] = free_port()
        return self.ports[documented]

    def _rewrite_value(self, value: str) -> str:
        value = re.sub(
            r"(127\.0\.0\.1|localhost):(\d+)", lambda m: f"127.0.0.1:{self.port(int(m[2]))}", value
        )
        if POSTGRES_URL:
            base = POSTGRES_URL.rsplit("/", 1)[0]
            value = re.sub(
                r"postgresql\+asyncpg://\S+/(\w+)",
                lambda m: f"{base}/{self.database_prefix}_{m[1]}",
                value,
            )
        if AMQP_URL:
            value = re.sub(r"amqp://\S+", AMQP_URL, value)
        return value

    def missing_service(self, argv: list[str]) -> str | None:
        text = " ".join([*argv, *self.exports.values()])
        if "postgresql" in text and not POSTGRES_URL:
            return "needs TR_TEST_POSTGRES_URL"
        if "amqp://" in text and not AMQP_URL:
            return "needs TR_TEST_AMQP_URL"
        return None

    def runnable(self, step: Step, argv: list[str]) -> list[str]:
        out: list[str] = [sys.executable]
        previous = ""
        for documented in argv[1:]:
            token = documented
            if token == PLACEHOLDER:
                key = FILLED_FROM.get(previous)
                if key is None or key not in self.printed:
                    raise AssertionError(f"{step.text!r}: no earlier command printed {previous}")
                token = self.printed[key]
            elif previous in ("--port", "--health-port", "--dashboard-port"):
                token = str(self.port(int(token)))
            elif previous == "--keep":
                token = str(self.work / "kept")  # not the documented folder: runs leave nothing
            elif previous == "--camera" and token.startswith("v4l2:"):
                if not Path(f"/dev/video{token.split(':', 1)[1]}").exists():
                    token = "synthetic"  # no camera on this machine
            out.append(self._rewrite_value(token))
            previous = documented
        program = step.program
        if program.startswith("bench/") and "--quick" not in out:
            out.append("--quick")
        if program == "bench/chaos.py" and "--fault" not in out:
            # every fault with this plan is tests/chaos's job (3 minutes); here the command
            # line is what is checked, on the fault that needs no restart of anything
            out += ["--fault", "gate network cut"]
        if program in ("central serve", "central demo") and "--port" not in out:
            out += ["--port", str(self.port(DEFAULT_PORTS["serve"]))]
        if program == "central serve" and _after(out, "--service") == "inventory":
            if "--health-port" not in out:
                out += ["--health-port", str(self.port(DEFAULT_PORTS["inventory_health"]))]
        if program == "gate_agent run" and "--dashboard-port" not in out:
            out += ["--dashboard-port", str(self.port(DEFAULT_PORTS["dashboard"]))]
        if program == "gate_agent decode":
            for image in (t for t in out[4:] if not t.startswith("-")):
                if not (self.clone / image).exists():
                    _render_ticket(self.clone / image)
        return out

    def health_url(self, step: Step, argv: list[str]) -> str:
        if step.program == "gate_agent run":
            return f"http://127.0.0.1:{_after(argv, '--dashboard-port')}/"
        if _after(argv, "--service") == "inventory":
            return f"http://127.0.0.1:{_after(argv, '--health-port')}/health"
        return f"http://127.0.0.1:{_after(argv, '--port')}/health"

    def env(self) -> dict[str, str]:
        return {**clone_env(self.clone), **self.exports}

    # -- running ------------------------------------------------------------------------------

    def run(self, step: Step) -> None:
        if step.block != self.block:
            self.finish_block()
            self.block = step.block
        if step.kind == "setup":
            self.outcomes.append(Outcome(step, step.argv, "not run: setup (reuses this venv)"))
            return
        if step.kind == "other":
            self.outcomes.append(Outcome(step, step.argv, "not run: not a project command"))
            return
        if step.kind == "export":
            for assignment in step.argv[1:]:
                name, _, value = assignment.partition("=")
                value = secrets.token_hex(16) if value == PLACEHOLDER else value
                self.exports[name] = self._rewrite_value(value)
            self.outcomes.append(Outcome(step, step.argv, "ok (environment)"))
            return
        for variant in optional_variants(step.argv):
            reason = self.missing_service(variant)
            if reason:
                self.outcomes.append(Outcome(step, variant, f"skipped: {reason}"))
                continue
            argv = self.runnable(step, variant)
            if step.background:
                self.background.append(self._start(step, argv))
            elif step.long_running:
                self._run_server(step, argv)
            else:
                self._run_once_unless_repeated(step, argv)

    def _log(self) -> Path:
        return self.work / f"cmd-{len(self.outcomes)}-{uuid.uuid4().hex[:6]}.log"

    def _run_once_unless_repeated(self, step: Step, argv: list[str]) -> None:
        """A bench command that is, under --quick, the same run as one that already went well in
        this document only has its command line parsed: running it again would prove nothing new
        and cost CI minutes (tests/docs/quick_runs.py says when two runs are the same)."""
        key = self._same_run_key(step, argv)
        earlier = self.quick_runs.get(key) if key else None
        if key and earlier:
            self._run_once(step, [sys.executable, "-c", PARSE_ONLY, *argv[1:]], argv)
            outcome = self.outcomes[-1]
            if outcome.status == "ok" and PARSED in outcome.output:
                outcome.status = f"ok (same run as #{earlier} under --quick)"
            else:
                outcome.status = "FAILED"
            return
        self._run_once(step, argv)
        if key and self.outcomes[-1].status == "ok":
            self.quick_runs[key] = len(self.outcomes)  # numbered from 1 in the report

    def _same_run_key(self, step: Step, argv: list[str]) -> tuple[object, ...] | None:
        # a server left running in the background, or other exported settings, could make the
        # same command line a different run: only commands alone with the same environment count
        if not step.program.startswith("bench/") or self.background:
            return None
        overridden = quick_overrides(self.clone / step.program)
        if overridden is None:
            return None
        return (same_run_key(argv, overridden), tuple(sorted(self.exports.items())))

    def _run_once(self, step: Step, argv: list[str], shown: list[str] | None = None) -> None:
        """Runs argv; the report shows `shown` (the documented command) if given."""
        log = self._log()
        started = time.monotonic()
        with log.open("wb") as out, open(self.work / "stdout.tmp", "wb") as stdout:
            try:
                code: int | None = subprocess.run(
                    argv,
                    cwd=self.clone,
                    env=self.env(),
                    stdout=stdout,
                    stderr=out,
                    timeout=ONE_SHOT_TIMEOUT_S,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = None
        printed = (self.work / "stdout.tmp").read_text(errors="replace")
        output = printed + log.read_text(errors="replace")
        self._remember_printed(printed)
        self._record(step, shown or argv, code, time.monotonic() - started, output)

    def _remember_printed(self, printed: str) -> None:
        try:
            value = json.loads(printed)
        except ValueError:
            return
        if isinstance(value, dict):
            self.printed.update({k: str(v) for k, v in value.items() if k in FILLED_FROM.values()})

    def _start(self, step: Step, argv: list[str]) -> _Running:
        log = self._log()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=self.clone, env=self.env(), stdout=out, stderr=out, start_new_session=True
            )
        outcome = Outcome(step, argv, "running")
        return _Running(outcome, proc, log, self.health_url(step, argv), time.monotonic())

    def _run_server(self, step: Step, argv: list[str]) -> None:
        server = self._start(step, argv)
        healthy = self._wait_healthy([*self.background, server])
        self._stop(server, healthy)
        self.finish_block(healthy=healthy)

    def _wait_healthy(self, running: list[_Running]) -> bool:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        pending = list(running)
        while pending and time.monotonic() < deadline:
            for item in list(pending):
                if item.proc.poll() is not None:
                    return False
                try:
                    if httpx.get(item.health_url, timeout=2).status_code < 500:
                        pending.remove(item)
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        return not pending

    def _stop(self, item: _Running, healthy: bool) -> None:
        if item.proc.poll() is None:
            os.killpg(item.proc.pid, signal.SIGTERM)
        try:
            code: int | None = item.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(item.proc.pid, signal.SIGKILL)
            item.proc.wait(timeout=10)
            code = None
        output = item.log.read_text(errors="replace")
        if not healthy:
            output += f"\n[test] did not answer {item.health_url} within {HEALTHY_TIMEOUT_S} s"
        self._record(
            item.outcome.step,
            item.outcome.argv,
            code if healthy else code or -1,
            time.monotonic() - item.started,
            output,
        )

    def finish_block(self, healthy: bool = True) -> None:
        """Background commands end with their code block."""
        if self.background and healthy:
            healthy = self._wait_healthy(self.background)
        for item in self.background:
            self._stop(item, healthy)
        self.background = []

    def _record(
        self, step: Step, argv: list[str], code: int | None, seconds: float, output: str
    ) -> None:
        broken = code != 0 or "Traceback (most recent call last)" in output
        self.outcomes.append(
            Outcome(step, argv, "FAILED" if broken else "ok", code, seconds, output)
        )

    def drop_databases(self) -> None:
        if not POSTGRES_URL:
            return
        subprocess.run(
            [sys.executable, "-c", _DROP_SCRIPT, POSTGRES_URL, self.database_prefix],
            check=True,
            timeout=120,
        )


def fresh_clone(root: Path, target: Path) -> Path:
    """A clone of the working tree: the committed files plus uncommitted changes to them (files
    git does not know are left out, as from a real clone)."""
    subprocess.run(["git", "clone", "-q", str(root), str(target)], check=True, timeout=120)
    diff = subprocess.run(
        ["git", "diff", "HEAD", "--binary"], cwd=root, capture_output=True, check=True
    ).stdout
    if diff:
        subprocess.run(["git", "apply", "-"], cwd=target, input=diff, check=True)
    return target


def clone_env(clone: Path) -> dict[str, str]:
    """This environment without the test's own settings, running the clone's code."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TR_", "VIRTUAL_ENV", "PYTEST", "COV_"))
    }
    # the clone's code, not the checkout the interpreter's editable install points at
    env["PYTHONPATH"] = str(clone)
    return env


def _after(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def _render_ticket(path: Path) -> None:
    import cv2

    from hardware.qr_render import render_qr_frame

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), render_qr_frame("TR1:DOCUMENTED-COMMAND", 640, 480))


_DROP_SCRIPT = """
import asyncio, sys
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from central.db import drop_postgres_database

async def main(url, prefix):
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": prefix + "%"}
        )
        names = [r[0] for r in rows]
    await engine.dispose()
    base = url.rsplit("/", 1)[0]
    for name in names:
        await drop_postgres_database(f"{base}/{name}")

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""
