"""The orchestrator reaches the atomic services only through their typed clients: no HTTP method
and path, no RPC name as a string, no stub method looked up by name. A service call written as a
string escapes the type checker and the client's one place that maps the service's errors."""

from __future__ import annotations

import re
from pathlib import Path

import central.orchestrator
from proto import inventory_pb2

ORCHESTRATOR = Path(central.orchestrator.__file__).parent
RPC_NAMES = sorted(inventory_pb2.DESCRIPTOR.services_by_name["Inventory"].methods_by_name)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

STRING_CALLS = {
    "a call by string": re.compile(r"\.call(_with_meta)?\(\s*[\"'f]"),
    "an HTTP method then a path": re.compile(
        r"[\"'](?:" + "|".join(HTTP_METHODS) + r")[\"']\s*,\s*f?[\"']/"
    ),
    "an RPC name as a string": re.compile(r"[\"'](?:" + "|".join(RPC_NAMES) + r")[\"']"),
    "a stub method looked up by name": re.compile(r"getattr\(\s*[\w.]*stub"),
    "a client's generic call": re.compile(
        r"\b(?:users|orders|events|inventory)\.call(?:_with_meta)?\("
    ),
}


def string_calls(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        # join continuation lines so `call(\n "POST",` is seen as one call
        text = re.sub(r"\(\s*\n\s*", "(", path.read_text())
        for line in text.splitlines():
            whats = [what for what, pattern in STRING_CALLS.items() if pattern.search(line)]
            if whats:
                where = path.relative_to(root.parent.parent)
                found.append(f"{where}: {' + '.join(whats)}: {line.strip()}")
    return found


def test_the_patterns_catch_each_string_typed_form(tmp_path: Path) -> None:
    pkg = tmp_path / "central" / "orchestrator"
    pkg.mkdir(parents=True)
    (pkg / "sample.py").write_text(
        "await users.call(\n    'POST', '/credits/entries', json={})\n"
        "await backends.inventory.call('MarkCheckedIn', request)\n"
        "rpc = getattr(self._stub, method)\n"
        "rows, meta = await orders.call_with_meta(\"GET\", \"/transfers\")\n"
        "await users.debit(user_id, 5, key)\n"
    )
    found = string_calls(pkg)
    assert len(found) == 4, found
    assert not [f for f in found if "debit" in f]


def test_no_string_typed_service_call_in_the_orchestrator() -> None:
    found = string_calls(ORCHESTRATOR)
    assert not found, "string-typed service calls:\n" + "\n".join(found)
