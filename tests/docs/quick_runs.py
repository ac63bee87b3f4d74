"""When two documented bench commands are the same run under `--quick`.

The docs test appends `--quick` to every `bench/…` command, and `--quick` overrides the sizes a
page varies from one command to the next (`--rates`, `--duration`, `--seats`, …): some documented
lines then run the very same seconds-long bench again, which cost CI time. A bench that declares
what `--quick` sets, as a module-level literal `QUICK = {dest: value, …}` that its own `--quick`
handling applies (`vars(args).update(QUICK)`), lets the test see that: two commands whose argv
are equal once the flags QUICK names are left out run alike. The later one is not run again; its
command line is still parsed by the bench's own parser (PARSE_ONLY), so a documented line that no
longer parses still fails. A bench without QUICK is always run.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path

PARSED = "[parsed the command line; not run: the same run as an earlier command]"

# Run as `python -c PARSE_ONLY bench/x.py ARGS…`: the script as `python bench/x.py ARGS…` would
# run it, up to its parse_args, then exit 0 (argparse exits 2 on a command line it refuses).
PARSE_ONLY = f"""
import argparse, os, runpy, sys

def parse_and_stop(parser, args=None, namespace=None):
    parse_args(parser, args, namespace)
    print({PARSED!r}, flush=True)
    raise SystemExit(0)

parse_args = argparse.ArgumentParser.parse_args
argparse.ArgumentParser.parse_args = parse_and_stop
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def quick_overrides(script: Path) -> frozenset[str] | None:
    """The argparse dests the bench's `--quick` sets, from its QUICK literal (None: none declared,
    so the test cannot tell which commands are the same run)."""
    if not script.is_file():
        return None
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "QUICK" for t in targets):
            return frozenset(ast.literal_eval(value))
    return None


def same_run_key(argv: list[str], overridden: Collection[str]) -> tuple[str, ...]:
    """argv without the flags `--quick` overrides and their values (each takes one value, as the
    sizes QUICK sets do). Anything else, order included, stays: a spelling the test does not
    recognise (`--dur 6` for `--duration 6`) makes commands differ, so both run."""
    flags = {"--" + dest.replace("_", "-") for dest in overridden}
    kept: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in flags:
            next(tokens, None)  # its value
        elif token.partition("=")[0] not in flags:
            kept.append(token)
    return tuple(kept)
