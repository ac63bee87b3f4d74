"""The commands README.md and docs/*.md show in code blocks, and how a test runs each of them.

What counts as a command: every line of a fenced code block (```, or ```sh/bash/shell/console;
```text blocks are output) (a trailing backslash continues the
line; `# …` comments are dropped), split at `&&`. Each piece is one of:

- a project command: a Python (`python`, `python3`, `.venv/bin/python`) running `-m central`,
  `-m gate_agent` or a script under `bench/` — run, and it must exit 0 without a traceback;
- environment: `export NAME=VALUE …` — applies to the commands after it in the same document;
- setup the test does not repeat: `python3 -m venv`, `pip install` (the test reuses the current
  interpreter and its installed dependencies), and the test suite itself (`pytest`);
- anything else (`curl`, `apt-get`, …): not a project command; listed as not run.

How a documented command is made runnable, and nothing else is changed:

- the Python is the current interpreter; the code is the fresh clone's (cwd and PYTHONPATH);
- `bench/` scripts get `--quick`; `bench/chaos.py` without `--fault` gets `--fault "gate network
  cut"` (tests/chaos runs every fault on the same plan; running them twice cost CI 3 minutes);
- `[--flag]` (an optional part) runs the command twice: without it and with it;
- a `bench/` command that under `--quick` is the same run as one that already went well in the
  same document (it differs only in flags the bench's `QUICK` sets: tests/docs/quick_runs.py) is
  not run again; only its command line is parsed, by the bench's own parser;
- `…` after `--user-id` / `--device-token` is the `user_id` / `device_token` an earlier command of
  the same document printed; `…` as an exported value is a fresh random secret;
- every literal loopback port (`--port N`, `127.0.0.1:N`, `localhost:N`, serve's default 8000,
  the gate dashboard's 8080, inventory's health port 8104) becomes a free port, the same one for
  the whole document, so runs in parallel do not collide;
- a PostgreSQL URL names a database of its own on TR_TEST_POSTGRES_URL's server (dropped after);
  an AMQP URL becomes TR_TEST_AMQP_URL; without them those commands are skipped with the reason;
- `--camera v4l2:N` without /dev/videoN becomes `--camera synthetic`;
- an image named to `gate_agent decode` that does not exist is rendered first (a QR code).

Long-running commands (`central serve`, `central demo` without `--once`, `gate_agent run`) are
started, waited for until they answer HTTP (`/health` for central, `/` for a gate's dashboard),
then stopped with SIGTERM: they must exit 0. A command ending in `&` runs in the background until
the end of its code block; a foreground long-running command after it waits for all of them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

PYTHONS = {"python", "python3", ".venv/bin/python", ".venv/bin/python3"}
PLACEHOLDER = "…"
# flag of a placeholder -> key of an earlier command's JSON output that fills it
FILLED_FROM = {"--user-id": "user_id", "--device-token": "device_token"}


@dataclass
class Step:
    """One piece of a documented command line, classified."""

    doc: str
    text: str  # as documented (continuations joined, comment dropped)
    argv: list[str]
    kind: str  # "project", "export", "setup", "other"
    background: bool = False
    block: int = 0

    @property
    def program(self) -> str:
        """`central serve`, `central admin`, `gate_agent run`, `bench/flash_sale.py`, …"""
        if self.argv[1:2] == ["-m"]:
            return " ".join(self.argv[2:4])
        return self.argv[1] if len(self.argv) > 1 else ""

    @property
    def long_running(self) -> bool:
        program = self.program
        if program == "central serve" or program == "gate_agent run":
            return True
        return program == "central demo" and "--once" not in self.argv


@dataclass
class Document:
    name: str
    steps: list[Step] = field(default_factory=list)


SHELL_FENCES = {"", "sh", "bash", "shell", "console"}


def code_blocks(markdown: str) -> list[str]:
    """The bodies of the fenced code blocks that hold commands (``` or ```sh/bash/shell/console);
    a block marked ```text is output shown, not a command."""
    blocks = re.findall(r"^```([\w-]*)\n(.*?)^```", markdown, flags=re.S | re.M)
    return [body for lang, body in blocks if lang in SHELL_FENCES]


def logical_lines(block: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip()]


def classify(doc: str, block: int, line: str) -> list[Step]:
    tokens = shlex.split(line, comments=True)
    if not tokens:
        return []
    text = line.split(" # ")[0].strip() if " # " in line else line
    steps: list[Step] = []
    current: list[str] = []
    for token in [*tokens, "&&"]:
        if token != "&&":
            current.append(token)
            continue
        if not current:
            continue
        background = current[-1] == "&"
        argv = current[:-1] if background else current
        steps.append(Step(doc, text, argv, _kind(argv), background, block))
        current = []
    return steps


def _kind(argv: list[str]) -> str:
    head = argv[0]
    if head == "export":
        return "export"
    if head.endswith("pip") or "pip" in argv[:3] and "install" in argv:
        return "setup"
    if head in PYTHONS or head.endswith("/python"):
        rest = argv[1:]
        if rest[:2] == ["-m", "venv"] or rest[:2] == ["-m", "pytest"]:
            return "setup"
        if rest[:2] in (["-m", "central"], ["-m", "gate_agent"]):
            return "project"
        if rest and rest[0].startswith("bench/"):
            return "project"
    return "other"


def read_document(path: Path, root: Path) -> Document:
    doc = Document(str(path.relative_to(root)))
    for number, block in enumerate(code_blocks(path.read_text())):
        for line in logical_lines(block):
            doc.steps.extend(classify(doc.name, number, line))
    return doc


def documents(root: Path) -> list[Document]:
    paths = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [read_document(p, root) for p in paths]


def optional_variants(argv: list[str]) -> list[list[str]]:
    """`[--flag]` parts: the command without them, then with them (brackets removed)."""
    optional = [i for i, t in enumerate(argv) if t.startswith("[") and t.endswith("]")]
    if not optional:
        return [argv]
    without = [t for i, t in enumerate(argv) if i not in optional]
    with_all = [t[1:-1] if i in optional else t for i, t in enumerate(argv)]
    return [without, with_all]
