"""The flash-sale race's pick of a seat not known to be taken (bench/flash_sale.py FreeSeats):
only free seats are picked, every free seat can be, taking a seat twice is harmless, and the
race ends when none is left."""

from __future__ import annotations

import random
from collections import Counter

from bench.flash_sale import FreeSeats


def test_only_free_seats_are_picked_each_of_them_and_taking_twice_is_harmless() -> None:
    rng = random.Random(3)
    free = FreeSeats([f"s{i}" for i in range(10)])
    for seat in ("s0", "s9", "s4", "s4"):  # the last: two buyers' attempts at one seat
        free.take(seat)
    picks = Counter(free.pick(rng) for _ in range(7000))
    assert set(picks) == {"s1", "s2", "s3", "s5", "s6", "s7", "s8"}
    assert min(picks.values()) > 800  # about 1,000 each: uniform, none starved
    for seat in list(picks):
        free.take(seat)
    assert free.pick(rng) is None
