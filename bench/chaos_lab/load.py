"""The mixed load a chaos run keeps up while parts fail: purchases (reserve then pay; some holds
abandoned to expire), transfers (initiate, both parties confirm with their own OTP codes),
verifications (a ticket's fresh QR code shown to a gate's camera) and card top-ups (through the
demo provider: create, then complete as its checkout page does). Every answer is recorded with
its time: successes per kind, and client-visible errors by kind (`call:ERROR_CODE`, or
`call:unreachable` when no HTTP answer came)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import cv2

from bench.chaos_lab.system import Buyer, Gate, System, latest_code
from hardware.qr_render import render_qr_frame

# Answers that are the business working as designed under contention, not faults.
EXPECTED = {
    "reserve:SEAT_UNAVAILABLE",
    "reserve:SEAT_ALREADY_SOLD",
    "transfer:TRANSFER_IN_PROGRESS",
}
TRANSFER_PRICE = 5
DUPLICATE_SHARE = 0.15
QR_REUSE_S = 40  # a code is valid 60 s after it was issued: reuse it well inside that
RETRY_PAUSE = 0.25  # a client's pause after a failure: errors are counted, not hammered
TOPUP_AMOUNTS = (5, 10, 20)
TOPUP_PAUSE = 1.0  # top-ups are rarer than purchases
PAY_CLICKS = 3  # the demo page re-enables its Pay button after a failure: the user clicks again
# A purchase worker starts at most one purchase per interval: the run then uses a number of seats
# set by its length, not by how fast the machine is (a fast machine sold the event out mid-run
# and "no purchase after the fault" read as "not recovered").
PURCHASE_INTERVAL = 0.25


@dataclass
class Record:
    successes: list[tuple[float, str]] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)

    def ok(self, kind: str) -> None:
        self.successes.append((time.time(), kind))

    def error(self, kind: str) -> None:
        self.errors.append((time.time(), kind))


class Load:
    def __init__(
        self,
        system: System,
        *,
        purchase_workers: int = 2,
        transfer_workers: int = 1,
        topup_workers: int = 1,
        scan_gates: list[Gate] | None = None,
        scan_pause: float = 0.6,
        abandon_share: float = 0.1,
        seed: int = 16,
    ) -> None:
        self.system = system
        self.rng = random.Random(seed)
        self.purchase_workers = purchase_workers
        self.transfer_workers = transfer_workers
        self.topup_workers = topup_workers
        self.scan_gates = scan_gates if scan_gates is not None else list(system.gates)
        self.scan_pause = scan_pause
        self.abandon_share = abandon_share
        self.record = Record()
        seats = list(system.event["seat_ids"])
        self.rng.shuffle(seats)
        self.free_seats: deque[str] = deque(seats)
        self.tickets: deque[tuple[str, Buyer]] = deque()  # sold, not yet shown to a gate
        # (seat, QR text, when fetched) of tickets shown once: a checked-in seat gets no new code
        self.shown: deque[tuple[str, str, float]] = deque(maxlen=200)
        self.go = asyncio.Event()
        self.stopping = False
        self.in_flight = 0
        # the last failure, read by the caller before its next await: no other task runs between
        self.last_kind = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # ----- control -----

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        workers = [self._purchases() for _ in range(self.purchase_workers)]
        workers += [self._transfers() for _ in range(self.transfer_workers)]
        workers += [self._topups() for _ in range(self.topup_workers)]
        workers += [self._scans(g) for g in self.scan_gates]
        self._tasks = [asyncio.create_task(w) for w in workers]
        self.go.set()

    async def pause(self, timeout: float = 60) -> None:
        """No new operation starts; returns once the ones in flight have ended."""
        self.go.clear()
        for _ in range(int(timeout / 0.1)):
            if not self.in_flight:
                return
            await asyncio.sleep(0.1)

    def resume(self) -> None:
        self.go.set()

    async def stop(self) -> None:
        self.stopping = True
        self.go.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _turn(self) -> None:
        await self.go.wait()

    # ----- HTTP -----

    async def call(
        self, name: str, method: str, path: str, token: str | None, body: Any = None
    ) -> Any | None:
        """The data of a successful answer, else None with the error recorded (and kept in
        `self.last_kind` for the caller that must tell expected refusals apart). No token: an
        anonymous call, as the demo checkout page makes."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        try:
            async with self._session.request(
                method, self.system.url + path, json=body, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            self._failed(name, "unreachable")
            return None
        try:
            answer = json.loads(text)
        except ValueError:
            self._failed(name, f"HTTP{status}")
            return None
        if status >= 300 or not answer.get("success"):
            self._failed(name, answer.get("error_code") or f"HTTP{status}")
            return None
        return answer["data"]

    def _failed(self, name: str, code: str) -> None:
        kind = f"{name}:{code}"
        self.record.error(kind)
        self.last_kind = kind

    # ----- purchases -----

    async def _purchases(self) -> None:
        while not self.stopping:
            await self._turn()
            if not self.free_seats:
                await asyncio.sleep(0.5)
                continue
            started = time.monotonic()
            # a few workers aim at the same first seats: real contention for one seat
            seat_id = self.free_seats[min(len(self.free_seats) - 1, self.rng.randrange(3))]
            buyer = self.rng.choice(self.system.buyers)
            self.in_flight += 1
            try:
                done = await self._purchase(seat_id, buyer)
            finally:
                self.in_flight -= 1
            if not done:
                await asyncio.sleep(RETRY_PAUSE)
            else:
                await asyncio.sleep(max(0.0, PURCHASE_INTERVAL - (time.monotonic() - started)))

    async def _purchase(self, seat_id: str, buyer: Buyer) -> bool:
        """False when the attempt met a failure (the worker then pauses as a client would)."""
        held = await self.call("reserve", "POST", "/api/reserve", buyer.token, {"seat_id": seat_id})
        if held is None:
            if self.last_kind in EXPECTED:
                self._drop_seat(seat_id)
                return True
            return False
        self._drop_seat(seat_id)
        if self.rng.random() < self.abandon_share:
            self.record.ok("abandoned hold")  # left to expire through the broker's TTL
            return True
        paid = await self.call(
            "pay", "POST", "/api/pay", buyer.token, {"order_id": held["order_id"]}
        )
        if paid is not None and paid.get("status") == "CONFIRMED":
            self.record.ok("purchase")
            self.tickets.append((seat_id, buyer))
            return True
        return False

    def _drop_seat(self, seat_id: str) -> None:
        try:
            self.free_seats.remove(seat_id)
        except ValueError:
            pass

    # ----- transfers -----

    async def _transfers(self) -> None:
        while not self.stopping:
            await self._turn()
            if len(self.tickets) < 2:
                await asyncio.sleep(0.3)
                continue
            seat_id, seller = self.tickets.popleft()
            buyer = self.rng.choice([b for b in self.system.buyers if b is not seller])
            self.in_flight += 1
            try:
                owner = await self._transfer(seat_id, seller, buyer)
            finally:
                self.in_flight -= 1
            if owner is not None:
                self.tickets.append((seat_id, owner))
            if owner is not buyer:
                await asyncio.sleep(RETRY_PAUSE)

    async def _transfer(self, seat_id: str, seller: Buyer, buyer: Buyer) -> Buyer | None:
        started = await self.call(
            "transfer",
            "POST",
            "/api/transfer/initiate",
            seller.token,
            {"seat_id": seat_id, "buyer_email": buyer.email, "credits_amount": TRANSFER_PRICE},
        )
        if started is None:
            return await self._owner(seat_id, seller, buyer)
        transfer_id = started["transfer_id"]
        for party in (seller, buyer):
            code = await self._otp(party.user_id, transfer_id)
            if code is None:
                self.record.error("transfer:no OTP delivered")
                return await self._owner(seat_id, seller, buyer)
            done = await self.call(
                "confirm",
                "POST",
                "/api/transfer/confirm",
                party.token,
                {"transfer_id": transfer_id, "otp_code": code},
            )
            if done is None:
                return await self._owner(seat_id, seller, buyer)
        self.record.ok("transfer")
        return buyer

    async def _otp(self, user_id: str, transfer_id: str, timeout: float = 10) -> str | None:
        for _ in range(int(timeout / 0.1)):
            code = await asyncio.to_thread(latest_code, self.system.otp_file, user_id, transfer_id)
            if code is not None:
                return code
            await asyncio.sleep(0.1)
        return None

    async def _owner(self, seat_id: str, *parties: Buyer) -> Buyer | None:
        """After an unclear transfer, whose ticket it is now (None: no one answers in time)."""
        for _ in range(40):
            for party in parties:
                assert self._session is not None
                try:
                    async with self._session.get(
                        self.system.url + "/api/tickets",
                        headers={"Authorization": f"Bearer {party.token}"},
                    ) as resp:
                        if resp.status != 200:
                            raise aiohttp.ClientError(str(resp.status))
                        tickets = (await resp.json())["data"]
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    break
                if any(t["seat_id"] == seat_id for t in tickets):
                    return party
            await asyncio.sleep(0.5)
        return None

    # ----- top-ups -----

    async def _topups(self) -> None:
        while not self.stopping:
            await self._turn()
            buyer = self.rng.choice(self.system.buyers)
            amount = self.rng.choice(TOPUP_AMOUNTS)
            self.in_flight += 1
            try:
                done = await self._topup(buyer, amount)
            finally:
                self.in_flight -= 1
            await asyncio.sleep(TOPUP_PAUSE if done else RETRY_PAUSE)

    async def _topup(self, buyer: Buyer, amount: int) -> bool:
        """Create a top-up, then pay it the way the demo checkout page does: post the top-up id
        and the secret from the checkout URL's fragment, with no credentials. A failed top-up is
        left PENDING (never credited), which the credits check also judges."""
        created = await self.call(
            "topup", "POST", "/api/credits/topup", buyer.token, {"amount": amount}
        )
        if created is None:
            return False
        secret = urlsplit(created["checkout_url"]).fragment
        body = {"topup_id": created["topup_id"], "secret": secret}
        for click in range(PAY_CLICKS):
            if click:
                await asyncio.sleep(RETRY_PAUSE)
            paid = await self.call("complete", "POST", "/api/payments/demo/complete", None, body)
            if paid is not None and paid.get("status") == "PAID":
                self.record.ok("topup")
                return True
        return False

    # ----- verifications -----

    async def _scans(self, gate: Gate) -> None:
        while not self.stopping:
            await self._turn()
            recent = [s for s in self.shown if s[2] > time.time() - QR_REUSE_S]
            if recent and self.rng.random() < DUPLICATE_SHARE:
                # the same code again, at this gate: a second entry on one ticket (DUPLICATE
                # online, a CONFLICT when an offline gate uploads it)
                _, text, _ = self.rng.choice(recent)
                await asyncio.to_thread(show, gate.camera_dir, text)
            elif self.tickets:
                seat_id, owner = self.tickets.popleft()
                self.in_flight += 1
                try:
                    qr = await self.call("qr", "GET", f"/api/tickets/{seat_id}/qr", owner.token)
                    if qr is not None:
                        await asyncio.to_thread(show, gate.camera_dir, qr["qr_payload"])
                        self.shown.append((seat_id, qr["qr_payload"], time.time()))
                    else:
                        self.tickets.append((seat_id, owner))  # try again later
                finally:
                    self.in_flight -= 1
            await asyncio.sleep(self.scan_pause)


def show(folder: Path, text: str) -> None:
    """Put one rendered code in a dir: camera's folder atomically (write, then rename)."""
    name = f"t-{uuid.uuid4().hex[:10]}.png"
    ok, png = cv2.imencode(".png", render_qr_frame(text, 640, 480))
    if not ok:
        raise RuntimeError("could not encode the QR frame")
    tmp = folder / (name + ".part")
    tmp.write_bytes(png.tobytes())
    os.replace(tmp, folder / name)
