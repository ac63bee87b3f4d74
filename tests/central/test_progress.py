"""Progress lines for a person waiting (central/progress.py): numbered steps with the time since
the start, counts within a step, and a ticker that reports about every 10%, not every item."""

from __future__ import annotations

import io

from central.progress import Progress


def test_steps_are_numbered_with_the_time_since_the_start() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = Progress("demo", total=3, stream=out, clock=lambda: now[0])
    progress.step("starting central")
    now[0] = 103.25
    progress.step("central is up")
    progress.note("a line within the step")
    progress.count("seats", 4000, 10000)
    assert out.getvalue().splitlines() == [
        "demo [1/3] starting central (0.0 s)",
        "demo [2/3] central is up (3.2 s)",
        "demo   a line within the step",
        "demo   seats: 4,000 of 10,000 (40%)",
    ]


def test_a_ticker_reports_every_tenth_and_the_end() -> None:
    out = io.StringIO()
    tick = Progress("bench", stream=out).ticker("buyers", 1000)
    for _ in range(1000):
        tick()
    lines = out.getvalue().splitlines()
    assert lines[0] == "bench   buyers: 100 of 1,000 (10%)"
    assert lines[-1] == "bench   buyers: 1,000 of 1,000 (100%)"
    assert len(lines) == 10
    odd = io.StringIO()
    tick = Progress("bench", stream=odd).ticker("frames", 7)
    for _ in range(7):
        tick()
    assert odd.getvalue().splitlines()[-1] == "bench   frames: 7 of 7 (100%)"
