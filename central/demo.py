"""`python -m central demo [--port P] [--once]`: TicketRemaster in one command, for a first look.

Central on the embedded default in a temporary data directory, one gate agent whose camera is a
folder (`dir:`) where the script drops the codes its attendees hold up, and the script itself:
registrations, purchases, a flagged buyer's one-time code, a transfer, then scans that give
SUCCESS, DUPLICATE, TRANSFERRED, EXPIRED and WRONG_HALL. Then it prints where to look (the attendee
app, the organiser console with a login, the gate dashboard with its PIN) and runs until Ctrl-C;
both children are stopped and the data directory removed on the way out. `--once` prints one JSON
object {scans[{label, expected, result}], urls{…}} and exits 0 when every scan got its expected
verdict (1 otherwise).

Needs the gate extras (`pip install -e '.[gate]'`): the gate decodes with zxing and OpenCV."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from central.local_processes import PYTHON, ROOT, CentralProcess, free_port, run_admin
from central.progress import Progress

ADMIN_EMAIL = "admin@demo.example"
PASSWORD = "demo password 1"
GATE_PIN = "2468"
HALL, OTHER_HALL = "HALL-A", "HALL-B"


# The script's steps, announced as each begins ("demo [3/10] …") so a person sees how far the
# start-up has come; tests/docs/test_readme_demo.py checks they appear in this order.
STEPS = (
    "creating the organiser's account",
    "starting central",
    "central is up",
    "creating two events",
    "gate agent started",
    "Ann and Bob register",
    "purchases",
    "Ann transfers her second seat to Bob",
    "gate online",
    "scans at the gate",
)
progress = Progress("demo", total=len(STEPS))


def say(message: str) -> None:
    """A line within a step; stdout stays for the result (`--once` prints JSON)."""
    progress.note(message)


def step(message: str) -> None:
    progress.step(message)


@dataclass
class Attendee:
    name: str
    email: str
    token: str = ""
    user_id: str = ""


@dataclass
class Scan:
    label: str
    expected: str
    result: str = ""
    mode: str = ""  # the gate decided "online" (asked central) or "offline" (its manifest)


@dataclass
class Demo:
    central: CentralProcess
    workdir: Path
    otp_file: Path
    camera_dir: Path
    gate_port: int
    gate: subprocess.Popen[bytes] | None = None
    admin_token: str = ""
    scans: list[Scan] = field(default_factory=list)
    _otp_lines_seen: int = 0

    # -- the public API, as the attendee app and the organiser console use it -------------------

    def call(self, method: str, path: str, token: str = "", **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.request(method, self.central.url + path, headers=headers, timeout=30, **kw)
        return resp.status_code, resp.json()

    def ok(self, method: str, path: str, token: str = "", **kw: Any) -> Any:
        status, body = self.call(method, path, token, **kw)
        if status >= 300:
            raise DemoError(f"{method} {path} answered {status}: {body}")
        return body["data"]

    def otp(self, purpose: str, reference_id: str, user_id: str) -> str:
        """The newest code sent for this purpose (central writes them to a file in the demo)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = self.otp_file.read_text().splitlines() if self.otp_file.exists() else []
            for line in reversed(lines):
                item = json.loads(line)
                if (item["purpose"], item["reference_id"], item["user_id"]) == (
                    purpose,
                    reference_id,
                    user_id,
                ):
                    return str(item["code"])
            time.sleep(0.05)
        raise DemoError(f"no {purpose} code for {reference_id}")

    # -- the script ---------------------------------------------------------------------------

    def register(self, name: str) -> Attendee:
        person = Attendee(name, f"{name.lower()}-{uuid.uuid4().hex[:4]}@demo.example")
        data = self.ok(
            "POST", "/api/auth/register", json={"email": person.email, "password": PASSWORD}
        )
        person.user_id = data["user_id"]
        code = self.otp("registration", person.user_id, person.user_id)
        verified = self.ok(
            "POST",
            "/api/auth/verify-registration",
            json={"user_id": person.user_id, "otp_code": code},
        )
        person.token = verified.get("access_token") or self.login(person.email)
        return person

    def login(self, email: str) -> str:
        data = self.ok("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
        return str(data["access_token"])

    def grant(self, person: Attendee, amount: int) -> None:
        self.ok(
            "POST",
            "/api/admin/credits/grant",
            self.admin_token,
            json={"user_id": person.user_id, "amount": amount},
        )

    def create_event(self, name: str, hall: str, seats: int) -> list[str]:
        start = datetime.now(UTC) + timedelta(hours=1)
        data = self.ok(
            "POST",
            "/api/admin/events",
            self.admin_token,
            json={
                "name": name,
                "venue": {"name": "Demo Venue"},
                "hall_id": hall,
                "event_date": start.isoformat(),
                "pricing": {"STANDARD": 50},
                "seats": {"rows": 1, "seats_per_row": seats},
            },
        )
        return list(data["seat_ids"])

    def buy(self, person: Attendee, seat_id: str) -> None:
        order = self.ok("POST", "/api/reserve", person.token, json={"seat_id": seat_id})
        order_id = order["order_id"]
        status, body = self.call("POST", "/api/pay", person.token, json={"order_id": order_id})
        if status != 200 and body.get("error_code") == "OTP_REQUIRED":
            say(f"{person.name} is flagged: a one-time code was sent; entering it")
            code = self.otp("purchase", order_id, person.user_id)
            self.ok(
                "POST",
                "/api/verify-otp",
                person.token,
                json={"context": "purchase", "reference_id": order_id, "otp_code": code},
            )
            status, body = self.call("POST", "/api/pay", person.token, json={"order_id": order_id})
        if status != 200:
            raise DemoError(f"{person.name} could not pay: {status} {body}")

    def qr(self, person: Attendee, seat_id: str) -> str:
        return str(self.ok("GET", f"/api/tickets/{seat_id}/qr", person.token)["qr_payload"])

    def transfer(self, seller: Attendee, buyer: Attendee, seat_id: str) -> None:
        data = self.ok(
            "POST",
            "/api/transfer/initiate",
            seller.token,
            json={"seat_id": seat_id, "buyer_email": buyer.email, "credits_amount": 40},
        )
        transfer_id = data["transfer_id"]
        for party in (seller, buyer):
            code = self.otp("transfer", transfer_id, party.user_id)
            self.ok(
                "POST",
                "/api/transfer/confirm",
                party.token,
                json={"transfer_id": transfer_id, "otp_code": code},
            )

    # -- the gate ----------------------------------------------------------------------------

    def start_gate(self, device_token: str) -> None:
        log = (self.workdir / "gate.log").open("ab")
        self.gate = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gate_agent",
                "run",
                "--central",
                self.central.url,
                "--device-token",
                device_token,
                "--camera",
                f"dir:{self.camera_dir}",
                "--pin",
                GATE_PIN,
                "--data-dir",
                str(self.workdir / "gate"),
                "--dashboard-host",
                "127.0.0.1",
                "--dashboard-port",
                str(self.gate_port),
                # a demo on a busy laptop: wait for central's answer rather than decide offline
                "--verify-timeout-s",
                "5",
                "--sync-interval-s",
                "1",
            ],  # fmt: skip
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        log.close()

    def gate_session(self) -> httpx.Client:
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.gate_port}", timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.gate is not None and self.gate.poll() is not None:
                raise DemoError(f"the gate agent exited; see {self.workdir / 'gate.log'}")
            try:
                if client.post("/api/login", json={"pin": GATE_PIN}).status_code == 200:
                    status = client.get("/api/status").json()["data"]
                    if status.get("online") and status.get("last_sync_at"):
                        return client
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise DemoError("the gate did not come online within 60 s")

    def show(self, gate: httpx.Client, label: str, code: str, expected: str) -> None:
        """Hold a code in front of the gate's camera; wait for its verdict."""
        before = len(gate.get("/api/scans", params={"limit": 500}).json()["data"])
        hold_up(self.camera_dir, code)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            scans = gate.get("/api/scans", params={"limit": 500}).json()["data"]
            if len(scans) > before:
                scan = Scan(label, expected, scans[0]["result"], scans[0]["mode"])
                self.scans.append(scan)
                mark = "as expected" if scan.result == expected else f"EXPECTED {expected}"
                say(f"gate: {label}: {scan.result} ({mark})")
                return
            time.sleep(0.05)
        self.scans.append(Scan(label, expected, "NO VERDICT"))
        say(f"gate: {label}: no verdict within 30 s")

    def stop(self) -> None:
        if self.gate is not None and self.gate.poll() is None:
            self.gate.send_signal(signal.SIGTERM)
            try:
                self.gate.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.gate.kill()
                self.gate.wait()
        self.central.stop()


def hold_up(camera_dir: Path, code: str) -> None:
    """Draw the code and put it in the `dir:` camera's folder whole (written aside, then renamed:
    the camera ignores `.part` files)."""
    import cv2

    from hardware.qr_render import render_qr_frame

    ok, png = cv2.imencode(".png", render_qr_frame(code, 640, 480))
    if not ok:
        raise DemoError("could not draw the code")
    name = camera_dir / f"{uuid.uuid4().hex[:8]}.png"
    part = name.with_name(name.name + ".part")
    part.write_bytes(png.tobytes())
    os.replace(part, name)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


class DemoError(Exception):
    """A step of the script failed; the message says which."""


def urls(demo: Demo) -> dict[str, str]:
    return {
        "attendee_app": demo.central.url + "/",
        "organiser_console": demo.central.url + "/admin/",
        "organiser_login": f"{ADMIN_EMAIL} / {PASSWORD}",
        "gate_dashboard": f"http://127.0.0.1:{demo.gate_port}/",
        "gate_pin": GATE_PIN,
        "api": demo.central.url + "/api/events",
    }


def script(demo: Demo) -> None:
    step("creating the organiser's account")
    run_admin(
        demo.central.data_dir,
        "create-user", "--email", ADMIN_EMAIL, "--password", PASSWORD, "--role", "admin",
    )  # fmt: skip
    step("starting central (all services, SQLite in a temporary directory)")
    demo.central.start()
    step(f"central is up at {demo.central.url}")
    demo.admin_token = demo.login(ADMIN_EMAIL)
    step(f"creating two events: one in {HALL}, one in {OTHER_HALL}; a gate for {HALL}")
    seats = demo.create_event("Demo Night", HALL, 6)
    other_seats = demo.create_event("Other Hall Matinee", OTHER_HALL, 2)
    gate = demo.ok(
        "POST", "/api/admin/gates", demo.admin_token, json={"hall_id": HALL, "name": "Demo Gate"}
    )
    demo.start_gate(gate["device_token"])
    step(f"gate agent started (camera: a folder; dashboard http://127.0.0.1:{demo.gate_port}/)")

    step("Ann and Bob register (one-time codes by the file backend); Carol is a flagged account")
    ann, bob = demo.register("Ann"), demo.register("Bob")
    carol = Attendee("Carol", f"carol-{uuid.uuid4().hex[:4]}@demo.example")
    made = run_admin(
        demo.central.data_dir,
        "create-user", "--email", carol.email, "--password", PASSWORD, "--flagged",
    )  # fmt: skip
    carol.user_id, carol.token = made["user_id"], demo.login(carol.email)
    for person in (ann, bob, carol):
        demo.grant(person, 500)

    step("purchases: Ann two seats and one in the other hall, Carol one seat (with her code)")
    demo.buy(ann, seats[0])
    demo.buy(ann, seats[1])
    demo.buy(ann, other_seats[0])
    demo.buy(carol, seats[2])
    saved_before_transfer = demo.qr(ann, seats[1])
    step("Ann transfers her second seat to Bob (both confirm with their codes)")
    demo.transfer(ann, bob, seats[1])

    say("waiting for the gate to come online")
    gate = demo.gate_session()
    step("gate online: it has central's manifest")
    step("scans at the gate: each code is held up to its camera")
    try:
        ring = _key_ring(demo.central.data_dir)
        first = demo.qr(ann, seats[0])
        time.sleep(1.1)  # codes are issued per second: the next one differs from the first
        again = demo.qr(ann, seats[0])  # a code cannot be fetched once its seat is checked in
        demo.show(gate, "Ann shows her ticket", first, "SUCCESS")
        demo.show(gate, "Ann shows it again (a second phone)", again, "DUPLICATE")
        demo.show(gate, "Carol (flagged) shows hers", demo.qr(carol, seats[2]), "SUCCESS")
        demo.show(gate, "Bob shows the ticket Ann sold him", demo.qr(bob, seats[1]), "SUCCESS")
        demo.show(
            gate, "Ann shows the code she saved before the transfer", saved_before_transfer,
            "TRANSFERRED",
        )  # fmt: skip
        # a screenshot taken two minutes ago: the code's 60-second window has passed
        old = ring.sign(seats[3], 0, time.time() - 120)
        demo.show(gate, "someone shows a two-minute-old screenshot", old, "EXPIRED")
        demo.show(
            gate, f"Ann shows her {OTHER_HALL} ticket at the {HALL} gate",
            demo.qr(ann, other_seats[0]), "WRONG_HALL",
        )  # fmt: skip
    finally:
        gate.close()


def _key_ring(data_dir: Path) -> Any:
    from central.signing import KeyRing

    return KeyRing.load_or_create(data_dir)


def print_welcome(links: dict[str, str]) -> None:
    print(
        "\nTicketRemaster demo is running (Ctrl-C stops it and removes its data):\n"
        f"  attendee app       {links['attendee_app']}   (log in as an attendee, or register)\n"
        f"  organiser console  {links['organiser_console']}   login {links['organiser_login']}\n"
        f"  gate dashboard     {links['gate_dashboard']}   PIN {links['gate_pin']}\n"
        f"  public API         {links['api']}\n",
        flush=True,
    )


def run_demo(port: int | None, once: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="ticketremaster-demo-") as tmp:
        workdir = Path(tmp)
        camera_dir = workdir / "camera"
        camera_dir.mkdir()
        otp_file = workdir / "otp.jsonl"
        central = CentralProcess(
            workdir / "data",
            port=port or 8000,
            args=["--otp-delivery", f"file:{otp_file}", "--log-level", "WARNING"],
            log_path=workdir / "central.log",
        )
        demo = Demo(central, workdir, otp_file, camera_dir, free_port())
        # Ctrl-C reaches the children too (same process group); SIGTERM only us: both end here.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            script(demo)
            links = urls(demo)
            passed = all(s.result == s.expected for s in demo.scans)
            if once:
                scans = [
                    {"label": s.label, "expected": s.expected, "result": s.result, "mode": s.mode}
                    for s in demo.scans
                ]
                print(json.dumps({"scans": scans, "urls": links, "passed": passed}, indent=2))
                return 0 if passed else 1
            print_welcome(links)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            say("stopping")
            return 0
        except (DemoError, AssertionError) as exc:
            say(f"failed: {exc}")
            for name in ("central.log", "gate.log"):
                path = workdir / name
                if path.exists():
                    say(f"last lines of {name}:\n{path.read_text()[-2000:]}")
            return 1
        finally:
            demo.stop()
            say("stopped; nothing left running")
