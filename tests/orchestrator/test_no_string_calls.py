"""The orchestrator reaches the atomic services only through their typed clients: no HTTP method
and path, no RPC name as a string, no stub method looked up by name. A service call written as
strings escapes the type checker and the client's one place that maps the service's errors.

The scan reads the code's syntax tree (not its text), so a docstring or comment that names an RPC
is not a call."""

from __future__ import annotations

import ast
from pathlib import Path

import central.orchestrator
from proto import inventory_pb2

ORCHESTRATOR = Path(central.orchestrator.__file__).parent
RPC_NAMES = set(inventory_pb2.DESCRIPTOR.services_by_name["Inventory"].methods_by_name)
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
GENERIC_CALLS = {"call", "call_with_meta"}


def _text(node: ast.expr) -> str | None:
    """A string literal's text (an f-string's literal start), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
        return first.value if isinstance(first, ast.Constant) else ""
    return None


def why_string_typed(call: ast.Call) -> str | None:
    args = [_text(a) for a in call.args]
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in GENERIC_CALLS and args and args[0]:
        return f"a generic .{func.attr}() by string"
    if len(args) >= 2 and args[0] in HTTP_METHODS and (args[1] or "").startswith("/"):
        return "an HTTP method and a path"
    if any(a in RPC_NAMES for a in args):
        return "an RPC name as a string"
    if isinstance(func, ast.Name) and func.id == "getattr" and call.args:
        if "stub" in ast.unparse(call.args[0]).lower():
            return "a stub method looked up by name"
    return None


def string_calls(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        calls = sorted(
            (n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: n.lineno
        )
        for node in calls:
            if why := why_string_typed(node):
                where = f"{path.relative_to(root.parent.parent)}:{node.lineno}"
                found.append(f"{where}: {why}: {ast.unparse(node)[:120]}")
    return found


def test_the_scan_catches_each_string_typed_form(tmp_path: Path) -> None:
    pkg = tmp_path / "central" / "orchestrator"
    pkg.mkdir(parents=True)
    (pkg / "sample.py").write_text(
        '"""A docstring naming ("MarkCheckedIn") is no call."""\n'
        "async def f(users, orders, backends, self, request, key):\n"
        "    await users.call(\n        'POST', '/credits/entries', json={})\n"
        "    await backends.inventory.call('MarkCheckedIn', request)\n"
        "    rpc = getattr(self._stub, method)\n"
        '    rows, meta = await orders.call_with_meta("GET", f"/transfers/{key}")\n'
        "    await run(backends, 'SeatCounts', request)\n"
        "    await users.debit(user_id, 5, key, order_id)  # typed: not flagged\n"
    )
    found = string_calls(pkg)
    assert [line.split(":")[1] for line in found] == ["3", "5", "6", "7", "8"], found


def test_no_string_typed_service_call_in_the_orchestrator() -> None:
    found = string_calls(ORCHESTRATOR)
    assert not found, "string-typed service calls:\n" + "\n".join(found)
