"""The table machinery itself: a wrong outcome fails the attempt and is marked in the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.abuse.table import Ledger, render_table


def test_a_wrong_outcome_fails_and_is_marked(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, "tests/abuse/x.py::test_y[a|b]")
    ledger.attempt("area", "held", attempts=2, expected="401", outcome="401")
    with pytest.raises(AssertionError, match="expected 401, got 200"):
        ledger.attempt("area", "let in", attempts=1, expected="401", outcome="200")
    with pytest.raises(AssertionError, match="left a trace"):
        ledger.attempt(
            "area",
            "wrote",
            attempts=1,
            expected="400",
            outcome="400",
            trace="a row",
            trace_ok=False,
        )
    table = render_table(tmp_path)
    assert table is not None
    lines = table.splitlines()
    assert lines[0].startswith("| area | attack |")
    assert "| area | held | 2 | 401 | 401 | none | ok |" in lines
    assert "| area | let in | 1 | 401 | 200 | none | FAILED |" in lines
    assert "| area | wrote | 1 | 400 | 400 | a row | FAILED |" in lines
    assert lines[-1] == "3 attacks, 1 refused as required, 2 not."
    assert render_table(tmp_path / "none") is None
