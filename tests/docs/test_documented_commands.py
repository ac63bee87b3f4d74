"""Every command README.md and docs/*.md show in a code block works from a fresh clone (issue 18).

How commands are recognised and made runnable: tests/docs/documented.py. Each document runs in its
own clone of the working tree (committed files plus uncommitted changes to them; files git does
not track are not there, as in a real clone), with the current interpreter. The test prints every
command with its exit status and fails on a non-zero exit or a traceback."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tests.docs.documented import (
    classify,
    code_blocks,
    documents,
    logical_lines,
    optional_variants,
)
from tests.docs.runner import DocumentRun, Outcome, fresh_clone

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = {doc.name: doc for doc in documents(ROOT)}


def report(name: str, outcomes: list[Outcome]) -> str:
    lines = [f"documented commands of {name}:"]
    for number, o in enumerate(outcomes, start=1):  # "same run as #N" refers to these numbers
        code = "" if o.exit_code is None else f"exit {o.exit_code}"
        shown = shlex.join(o.argv).replace(sys.executable, "python")
        lines.append(f"  #{number:<3} {o.status:<40} {code:<8} {o.seconds:6.1f} s  {shown}")
    for o in outcomes:
        if o.failed:
            lines.append(f"--- output of the failed command: {shlex.join(o.argv)}")
            lines.append(o.output[-4000:])
    return "\n".join(lines)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    "name", [n for n, d in DOCUMENTS.items() if any(s.kind == "project" for s in d.steps)]
)
def test_documented_commands_run_from_a_fresh_clone(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = fresh_clone(ROOT, tmp_path / "clone")
    work = tmp_path / "work"
    work.mkdir()
    run = DocumentRun(clone, work)
    try:
        for step in DOCUMENTS[name].steps:
            run.run(step)
        run.finish_block()
    finally:
        for item in run.background:
            item.proc.kill()
        run.drop_databases()
    text = report(name, run.outcomes)
    with capsys.disabled():
        print("\n" + text)
    assert not [o for o in run.outcomes if o.failed], text
    ran = [o for o in run.outcomes if o.status == "ok"]
    assert ran, text
    skipped = [o for o in run.outcomes if o.status.startswith("skipped")]
    if skipped:
        pytest.skip("; ".join(f"{' '.join(o.argv)}: {o.status}" for o in skipped))


def test_recognises_project_commands_and_leaves_others() -> None:
    markdown = (
        "text\n```\n"
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python -m central serve\n"
        "curl -s localhost:8000/api/events\n"
        ".venv/bin/python bench/flash_sale.py --postgres x \\\n    --amqp y   # a comment\n"
        "python -m gate_agent run --pin 1 &\n"
        "export TR_JWT_SECRET=…\n"
        "```\n"
    )
    lines = logical_lines(code_blocks(markdown)[0])
    steps = [step for line in lines for step in classify("d", 0, line)]
    kinds = [s.kind for s in steps]
    assert kinds == ["setup", "setup", "project", "other", "project", "project", "export"]
    serve, bench, gate = steps[2], steps[4], steps[5]
    assert serve.program == "central serve" and serve.long_running
    assert bench.argv == [
        ".venv/bin/python",
        "bench/flash_sale.py",
        "--postgres",
        "x",
        "--amqp",
        "y",
    ]
    assert bench.program == "bench/flash_sale.py" and not bench.long_running
    assert gate.background and gate.long_running and gate.argv[-1] == "1"


def test_optional_parts_run_without_and_with() -> None:
    assert optional_variants(["p", "bench/x.py", "--rates", "1", "[--scaled-out]"]) == [
        ["p", "bench/x.py", "--rates", "1"],
        ["p", "bench/x.py", "--rates", "1", "--scaled-out"],
    ]


def test_every_document_with_code_is_covered() -> None:
    """The README and the benchmark page show project commands: an extraction that finds none
    (a changed fence style, say) would make the main test pass by running nothing."""
    assert any(s.kind == "project" for s in DOCUMENTS["README.md"].steps)
    benches = {s.program for s in DOCUMENTS["docs/benchmarks.md"].steps if s.kind == "project"}
    assert {p for p in benches} >= {
        "bench/flash_sale.py",
        "bench/verify_load.py",
        "bench/token_bench.py",
        "bench/decode_bench.py",
        "bench/gate_pipeline.py",
    }, benches
