"""README.md and docs/ are read from a clone alone: they refer to nothing outside the repository
(no `../` path, no absolute path of a machine), and every file of the repository they name exists
(issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP_DIRS = (
    "docs",
    "bench",
    "systemd",
    "central",
    "gate_agent",
    "hardware",
    "proto",
    "tests",
    ".ci",
)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def problems(text: str, page: Path) -> list[str]:
    found = []
    for match in re.finditer(r"(?<![\w.])\.\./[^\s`)\]]*", text):
        found.append(f"points outside the repository: {match[0]}")
    for match in re.finditer(r"(?<![\w.:/])/(?:work|home|root|tmp/[\w-]+/)[^\s`)]*", text):
        found.append(f"names a path of one machine: {match[0]}")
    for match in re.finditer(r"\]\(([^)\s]+)\)", text):  # markdown links
        target = match[1].split("#")[0]
        if not target or re.match(r"^[a-z]+:", target):
            continue
        if not (page.parent / target).resolve().is_relative_to(ROOT):
            found.append(f"link outside the repository: {match[1]}")
        elif not (page.parent / target).exists():
            found.append(f"link to a missing file: {match[1]}")
    dirs = "|".join(re.escape(d) for d in TOP_DIRS)
    for match in re.finditer(rf"`((?:{dirs})/[\w./@-]*[\w@-])`", text):  # `docs/api.md`, …
        if not (ROOT / match[1]).exists():
            found.append(f"names a missing file: {match[1]}")
    return found


def test_readme_and_docs_refer_to_nothing_outside_the_repository() -> None:
    found = {
        str(p.relative_to(ROOT)): problems(p.read_text(), p)
        for p in pages()
        if problems(p.read_text(), p)
    }
    assert found == {}


def test_the_check_finds_what_it_looks_for() -> None:
    page = ROOT / "docs" / "x.md"
    text = (
        "See `../shared/design/ARCHITECTURE.md`, [plan](../../plan.md), [gone](missing.md), "
        "/work/main/notes and `docs/nowhere.md`; but `docs/api.md` and https://central.example "
        "are fine."
    )
    assert problems(text, page) == [
        "points outside the repository: ../shared/design/ARCHITECTURE.md",
        "points outside the repository: ../../plan.md",
        "names a path of one machine: /work/main/notes",
        "link outside the repository: ../../plan.md",
        "link to a missing file: missing.md",
        "names a missing file: docs/nowhere.md",
    ]
