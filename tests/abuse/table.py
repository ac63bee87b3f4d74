"""The abuse suite's record: `Ledger.attempt` checks one attack's outcome against the refusal it
must get (an assertion, so a wrong outcome fails the test) and writes it as a row; the rows of a
run are rendered into one Markdown table (tests/conftest.py prints it and keeps it in
test-artifacts/abuse-table.md, whatever -s or -q say)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

COLUMNS = ("area", "attack", "attempts", "expected", "outcome", "trace left")


@dataclass(frozen=True)
class Row:
    area: str
    attack: str
    attempts: int
    expected: str
    outcome: str
    trace: str
    passed: bool


class Ledger:
    def __init__(self, rows_dir: Path, test_id: str) -> None:
        rows_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_id)[-150:]
        self.path = rows_dir / f"{safe}.{os.getpid()}.jsonl"

    def attempt(
        self,
        area: str,
        attack: str,
        *,
        attempts: int,
        expected: str,
        outcome: str,
        trace: str = "none",
        trace_ok: bool = True,
    ) -> None:
        passed = outcome == expected and trace_ok
        row = Row(area, attack, attempts, expected, outcome, trace, passed)
        with self.path.open("a") as fh:
            fh.write(json.dumps(asdict(row)) + "\n")
        assert outcome == expected, f"{area}: {attack}: expected {expected}, got {outcome}"
        assert trace_ok, f"{area}: {attack}: left a trace: {trace}"


def render_table(rows_dir: Path) -> str | None:
    if not rows_dir.is_dir():
        return None
    rows: list[Row] = []
    for path in sorted(rows_dir.glob("*.jsonl")):
        rows.extend(Row(**json.loads(line)) for line in path.read_text().splitlines() if line)
    if not rows:
        return None
    rows.sort(key=lambda r: (r.area, r.attack))
    lines = [
        "| " + " | ".join(COLUMNS) + " | verdict |",
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    for r in rows:
        cells = (r.area, r.attack, str(r.attempts), r.expected, r.outcome, r.trace)
        mark = "ok" if r.passed else "FAILED"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + f" | {mark} |")
    failed = sum(not r.passed for r in rows)
    lines.append("")
    lines.append(f"{len(rows)} attacks, {len(rows) - failed} refused as required, {failed} not.")
    return "\n".join(lines) + "\n"
