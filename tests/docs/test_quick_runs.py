"""The docs test runs once the documented bench commands that are the same run under --quick
(tests/docs/quick_runs.py), still parses the others' command lines, and never takes commands
that differ in a flag --quick keeps for one run. Fast: no bench runs here."""

from __future__ import annotations

from pathlib import Path

from tests.docs.documented import Step
from tests.docs.quick_runs import quick_overrides, same_run_key
from tests.docs.runner import DocumentRun

ROOT = Path(__file__).resolve().parents[2]
PY = ".venv/bin/python"


def key(bench: str, *args: str) -> tuple[str, ...]:
    overridden = quick_overrides(ROOT / "bench" / bench)
    assert overridden is not None, bench
    return same_run_key([PY, f"bench/{bench}", *args, "--quick"], overridden)


def test_the_benches_declare_what_quick_sets() -> None:
    assert quick_overrides(ROOT / "bench/verify_load.py") == {"gates", "seats", "rates", "duration"}
    assert quick_overrides(ROOT / "bench/flash_sale.py") == {
        "buyers",
        "seats",
        "concurrency",
        "hold_ttl",
    }
    # no QUICK: the test cannot tell, so every command of these benches runs
    assert quick_overrides(ROOT / "bench/chaos.py") is None
    assert quick_overrides(ROOT / "bench/token_bench.py") is None


def test_commands_that_differ_only_in_what_quick_sets_are_one_run() -> None:
    # docs/benchmarks.md: the SQLite check before the tuning, and the same after it
    assert key("verify_load.py", "--json", "--rates", "50,100,200", "--duration", "6") == key(
        "verify_load.py", "--json", "--rates", "200,400", "--duration=6", "--seats", "400"
    )
    assert key("decode_bench.py") == key("decode_bench.py", "--iterations", "30")


def test_commands_that_differ_in_a_flag_quick_keeps_are_not() -> None:
    sqlite_json = ["--json", "--rates", "100,200", "--seats", "800"]
    variants = [
        sqlite_json,
        [*sqlite_json, "--workers", "1"],
        [*sqlite_json, "--workers", "2"],
        [*sqlite_json, "--scaled-out"],
        [*sqlite_json, "--database-url", "postgresql+asyncpg://postgres@127.0.0.1/vb"],
        sqlite_json[1:],  # without --json
    ]
    keys = {key("verify_load.py", *args) for args in variants}
    assert len(keys) == len(variants)
    assert key("flash_sale.py", "--buyers", "400") != key(
        "flash_sale.py", "--buyers", "400", "--postgres", "postgresql+asyncpg://x/flash"
    )


FAKE_BENCH = """
import argparse

QUICK = {"seats": 1}
parser = argparse.ArgumentParser()
parser.add_argument("--seats", type=int, default=10)
parser.add_argument("--workers", type=int)
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
with open("runs.txt", "a") as runs:
    runs.write(f"workers {args.workers}\\n")
"""


def test_the_runner_runs_a_repeated_run_once_and_still_parses_it(tmp_path: Path) -> None:
    clone, work = tmp_path / "clone", tmp_path / "work"
    (clone / "bench").mkdir(parents=True)
    work.mkdir()
    (clone / "bench/fake.py").write_text(FAKE_BENCH)
    run = DocumentRun(clone, work)
    for args in (
        ["--seats", "100"],
        ["--seats", "200"],  # the same run as the first under --quick
        ["--seats", "200", "--workers", "2"],
        ["--seats", "many"],  # its key matches the first; the parse refuses it
    ):
        argv = [PY, "bench/fake.py", *args]
        run.run(Step("d.md", " ".join(argv), argv, "project"))
    statuses = [o.status for o in run.outcomes]
    assert statuses == ["ok", "ok (same run as #1 under --quick)", "ok", "FAILED"], statuses
    assert (clone / "runs.txt").read_text().splitlines() == ["workers None", "workers 2"]
    # the report shows the documented command, not the parse-only wrapper
    assert run.outcomes[1].argv[1:] == ["bench/fake.py", "--seats", "200", "--quick"]
    assert "invalid int value: 'many'" in run.outcomes[3].output


def test_a_documented_keep_folder_is_the_runs_own(tmp_path: Path) -> None:
    """docs/reliability.md keeps a chaos run's logs in /tmp/chaos: the docs test must not leave a
    folder there on every CI run, so --keep points into the run's own work folder."""
    run = DocumentRun(tmp_path / "clone", tmp_path / "work")
    argv = [PY, "bench/chaos.py", "--fault", "SIGKILL orchestrator", "--keep", "/tmp/chaos"]
    step = Step("docs/reliability.md", " ".join(argv), argv, "project")
    out = run.runnable(step, argv)
    assert out[out.index("--keep") + 1] == str(tmp_path / "work" / "kept")
    assert "/tmp/chaos" not in out
