"""Progress lines for a person waiting on something slow (the demo starting, an event with
thousands of seats, a bench): one line per step as it happens, on stderr, so stdout stays for
the result a script reads (JSON, figures)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """``demo [2/9] central is up (3.1 s)``: numbered steps when the total is known, each with
    the time since the start."""

    def __init__(
        self,
        prefix: str,
        total: int | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.total = total
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.done = 0

    def _write(self, text: str) -> None:
        # looked up at each line, so a test's redirected stderr gets it too
        print(text, file=self.stream or sys.stderr, flush=True)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def step(self, message: str) -> None:
        """The next step begins (or has just finished, as the message says)."""
        self.done += 1
        of = f" [{self.done}/{self.total}]" if self.total else ""
        self._write(f"{self.prefix}{of} {message} ({self.elapsed():.1f} s)")

    def note(self, message: str) -> None:
        """A line within the current step (not counted)."""
        self._write(f"{self.prefix}   {message}")

    def count(self, what: str, done: int, total: int) -> None:
        """``seats: 4,000 of 10,000 (40%)``: how far a long step has come."""
        share = done / total if total else 1.0
        self._write(f"{self.prefix}   {what}: {done:,} of {total:,} ({share:.0%})")

    def ticker(self, what: str, total: int, lines: int = 10) -> Callable[[], None]:
        """A function to call once per item done: it prints the count about `lines` times in
        all (every 10% by default) and at the end, not at every item."""
        state = {"done": 0, "next": 0}
        step = max(1, -(-total // lines))

        def tick() -> None:
            state["done"] += 1
            if state["done"] >= state["next"] + step or state["done"] == total:
                state["next"] = state["done"] - state["done"] % step
                self.count(what, state["done"], total)

        return tick
