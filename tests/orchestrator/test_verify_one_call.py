"""The short way in: a gate whose authentication this orchestrator has cached, in a hall with exactly
one event open now, has a valid ticket admitted in ONE inventory call (MarkCheckedIn bound to that
event), with no seat read before it. Every refusal of that call carries the seat as it stands, and
the verdict is judged from it the long way — so each verdict is what the long way gives, still with
no second read. The caches are given a long life here so that timing cannot switch the short way
off; a spy counts the inventory calls the verifier makes."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from cluster import Cluster, running_cluster
from money_support import orders_of, refund
from verify_support import (
    add_gate,
    buy,
    entry_logs,
    gate_verify,
    keyring,
    make_event,
    qr,
    seat,
)

from central.orchestrator.event_cache import EventCache
from central.orchestrator.keys import gate_cache_key

LONG = 600.0  # seconds: no cache entry expires while a test runs


class InventoryCalls:
    """Counts the seat reads and check-ins asked of the verifier's inventory client (and makes
    them). The test's own reads go through the same client: take() just before a scan."""

    def __init__(self, c: Cluster) -> None:
        self.counts: Counter[str] = Counter()
        inventory = c.runtime().verifier.backends.inventory
        for name in ("find_seat", "mark_checked_in"):
            real = getattr(inventory, name)

            async def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
                self.counts[_name] += 1
                return await _real(*args, **kw)

            setattr(inventory, name, counted)

    def take(self) -> dict[str, int]:
        """The counts since the last take."""
        taken = {name: self.counts[name] for name in ("find_seat", "mark_checked_in")}
        self.counts.clear()
        return taken


ONE_CALL = {"find_seat": 0, "mark_checked_in": 1}


async def short_way(c: Cluster, *gates: dict[str, Any]) -> InventoryCalls:
    """Long-lived caches, each gate's authentication and its hall's events in them; the spy."""
    c.app[gate_cache_key].ttl = LONG
    verifier = c.runtime().verifier
    verifier.events = EventCache(verifier.events.events, ttl=LONG)
    for gate in gates:
        status, body = await gate_verify(c, gate, "TR1:warm-up")  # INVALID, the gate now cached
        assert status == 200 and body["data"]["result"] == "INVALID", body
        await verifier.events.read_hall_events(gate["hall_id"])
        assert verifier.events.hall_events(gate["hall_id"]) is not None
    return InventoryCalls(c)


async def verdict(
    c: Cluster, calls: InventoryCalls, gate: dict[str, Any], payload: str
) -> tuple[dict[str, Any], str, dict[str, int]]:
    """One scan: its verdict, its scan id and the inventory calls it made."""
    scan_id = str(uuid.uuid4())
    calls.take()
    status, body = await gate_verify(c, gate, payload, scan_id)
    made = calls.take()
    assert status == 200, body
    return body["data"], scan_id, made


async def test_a_valid_ticket_is_admitted_in_one_call(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=2)
        gate = await add_gate(c, event["admin"]["token"])
        seat_id = event["seat_ids"][0]
        buyer = await buy(c, seat_id)
        code = await qr(c, buyer["token"], seat_id)
        calls = await short_way(c, gate)

        data, scan_id, made = await verdict(c, calls, gate, code)
        assert data["result"] == "SUCCESS", data
        assert made == ONE_CALL
        assert data["seat"]["seat_id"] == seat_id and data["seat"]["row"]
        assert data["event"]["event_id"] == event["event_id"] and data["checked_in_at"]
        (entry,) = await entry_logs(c, gate, scan_id)
        assert (entry.result, entry.event_id, entry.hall_expected, entry.seat_id) == (
            "SUCCESS",
            event["event_id"],
            "HALL-A",
            seat_id,
        )
        assert (await seat(c, seat_id)).status == "CHECKED_IN"

        # the same ticket again: refused, and judged DUPLICATE from the seat the refusal carried
        data, scan_id, made = await verdict(c, calls, gate, code)
        assert data["result"] == "DUPLICATE", data
        assert data["checked_in_gate_id"] == gate["gate_id"] and data["checked_in_at"]
        assert made == ONE_CALL
        assert [e.result for e in await entry_logs(c, gate, scan_id)] == ["DUPLICATE"]


async def test_each_refusal_is_judged_as_the_long_way_judges_it(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        event = await make_event(c, seats=6)
        admin, ids = event["admin"], event["seat_ids"]
        gate = await add_gate(c, admin["token"], "HALL-A")
        # a second event in the same hall, its doors not open yet: HALL-A has one event open
        later = await make_event(
            c, starts_in=timedelta(days=2), doors=(timedelta(days=1), timedelta(days=3))
        )
        # HALL-B with an event of its own open now
        await make_event(c, hall="HALL-B", seats=1)
        gate_b = await add_gate(c, admin["token"], "HALL-B")
        ring = keyring(c)
        now = time.time()
        sold = [await buy(c, seat_id) for seat_id in ids[:4]]
        later_buyer = await buy(c, later["seat_ids"][0])
        epochs = [(await seat(c, seat_id)).owner_epoch for seat_id in ids[:4]]
        refunded_code = await qr(c, sold[3]["token"], ids[3])
        (order,) = await orders_of(c, seat_id=ids[3], status="CONFIRMED")
        status, body = await refund(c, admin, order["order_id"])
        assert status == 200, body
        calls = await short_way(c, gate, gate_b)

        cases = [
            ("UNPAID", gate, ring.sign(ids[5], 0, now)),  # never sold
            ("NOT_FOUND", gate, ring.sign(str(uuid.uuid4()), 1, now)),
            ("TRANSFERRED", gate, ring.sign(ids[0], epochs[0] - 1, now)),
            ("CANCELLED", gate, refunded_code),
            ("WRONG_HALL", gate_b, await qr(c, sold[1]["token"], ids[1])),
            ("WRONG_DATE", gate, await qr(c, later_buyer["token"], later["seat_ids"][0])),
        ]
        for expected, at_gate, code in cases:
            data, scan_id, made = await verdict(c, calls, at_gate, code)
            assert data["result"] == expected, (expected, data)
            assert made == ONE_CALL, expected
            assert [e.result for e in await entry_logs(c, at_gate, scan_id)] == [expected]
        for seat_id in (ids[0], ids[1], later["seat_ids"][0]):
            assert (await seat(c, seat_id)).status == "SOLD"  # nothing admitted by a refusal
        assert (await seat(c, ids[5])).status == "AVAILABLE"

        data, _, made = await verdict(c, calls, gate, await qr(c, sold[2]["token"], ids[2]))
        assert data["result"] == "SUCCESS" and made == ONE_CALL


async def test_two_events_open_in_a_hall_take_the_long_way(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as c:
        first = await make_event(c, hall="HALL-C", seats=1)
        await make_event(c, hall="HALL-C", seats=1)
        gate = await add_gate(c, first["admin"]["token"], "HALL-C")
        seat_id = first["seat_ids"][0]
        buyer = await buy(c, seat_id)
        calls = await short_way(c, gate)

        data, _, made = await verdict(c, calls, gate, await qr(c, buyer["token"], seat_id))
        assert data["result"] == "SUCCESS", data
        assert made == {"find_seat": 1, "mark_checked_in": 1}
