"""The hard-frame second pass decodes real ticket codes the fast pass misses (glare, a phone's
moiré and dark mode), never reports a wrong text, stays off on empty frames, and gives way when
code-like frames keep costing time (behaviour only; rates and speed are in bench/hard_frames.py)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from hardware.decode import ZxingDecoder
from hardware.hard_frames import corpus
from hardware.second_pass import HardFrameDecoder


@pytest.fixture(scope="module")
def results() -> dict[str, list[tuple[bool, bool]]]:
    fast = ZxingDecoder()
    hard = HardFrameDecoder(ZxingDecoder(), budget_ms=1000, max_share=None)
    out: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for item in corpus(4, seed=15):
        before = [c.text for c in fast.decode(item.frame)]
        hard.forget()
        found = hard.decode(item.frame)
        after = [c.text for c in found]
        assert set(before) <= {item.payload} and set(after) <= {item.payload}, item.seed
        for code in found:  # corners are frame pixels, not the crop's or the upscaled crop's
            assert all(0 <= x < 640 and 0 <= y < 480 for x, y in code.corners), code.corners
        out[item.distortion].append((item.payload in before, item.payload in after))
    return out


@pytest.mark.parametrize("distortion", ["glare", "phone_moire", "phone_dark_mode"])
def test_second_pass_reads_what_the_fast_pass_misses(
    results: dict[str, list[tuple[bool, bool]]], distortion: str
) -> None:
    rows = results[distortion]
    rescued = sum(1 for before, after in rows if after and not before)
    assert rescued >= 2, rows
    # what the fast pass reads, the decoder with the second pass reads too
    assert all(after for before, after in rows if before), rows


def test_second_pass_never_loses_a_fast_pass_code(
    results: dict[str, list[tuple[bool, bool]]],
) -> None:
    assert all(after for rows in results.values() for before, after in rows if before)


def test_empty_frames_get_no_second_pass() -> None:
    hard = HardFrameDecoder(ZxingDecoder())
    for level in (0, 128, 200, 255):
        assert hard.decode(np.full((480, 640), level, dtype=np.uint8)) == []
    assert hard.stats.candidates == 0 and hard.stats.frames == 4


class SteppingClock:
    """Each reading is 15 ms after the last: every second-pass step costs time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.015
        return self.now


def _patterned_shirt() -> np.ndarray:
    """Module-sized dark and light squares on a light patch: code-like, but no code."""
    rng = np.random.default_rng(3)
    frame = np.full((480, 640), 120, dtype=np.uint8)
    squares = np.where(rng.random((45, 45)) < 0.5, 20, 230).astype(np.uint8)
    frame[60:420, 140:500] = np.kron(squares, np.ones((8, 8), dtype=np.uint8))
    return frame


def test_code_like_frames_cannot_take_more_than_their_share() -> None:
    clock = SteppingClock()
    hard = HardFrameDecoder(ZxingDecoder(), budget_ms=40, max_share=0.5, clock=clock)
    frame = _patterned_shirt()
    for _ in range(10):
        assert hard.decode(frame) == []
    stats = hard.stats
    assert stats.budget_stops == stats.candidates  # every pass it ran used its whole budget
    assert stats.share_skips >= 4 and stats.candidates + stats.share_skips == 10, stats
    ran = stats.candidates
    clock.now += 1.0  # a second later the credit has refilled
    hard.decode(frame)
    assert hard.stats.candidates == ran + 1


def test_a_code_in_the_previous_frame_opens_the_whole_frame_to_the_second_pass() -> None:
    from hardware.hard_frames import ticket_codes
    from hardware.qr_render import render_qr_frame
    from hardware.second_pass import code_region

    code = ticket_codes(1)[0]
    plain = render_qr_frame(code, 640, 480, module_px=4)
    # a faded code, 10 grey levels between its modules: too faint to count as a code region
    # on its own, and the fast pass cannot binarize it
    faded = np.where(plain < 128, 118, 128).astype(np.uint8)
    assert code_region(faded) is None
    hard = HardFrameDecoder(ZxingDecoder(), budget_ms=1000, max_share=None)
    assert hard.decode(faded) == []  # nothing hinted: no second pass
    assert hard.stats.candidates == 0
    assert [c.text for c in hard.decode(plain)] == [code]  # the fast pass reads this one
    assert [c.text for c in hard.decode(faded)] == [code]  # so the next frame gets the full pass
    assert hard.stats.second_hits == 1
