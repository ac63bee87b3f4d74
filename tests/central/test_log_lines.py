"""The JSON log line: one object per line, whatever the fields hold, with the record's own time."""

from __future__ import annotations

import json
import logging

from central.logs import JsonFormatter


def record(created: float, **fields: object) -> logging.LogRecord:
    r = logging.LogRecord("t", logging.INFO, __file__, 1, "rpc %s", ("Echo",), None)
    r.created, r.msecs = created, (created % 1) * 1000
    r.fields = fields  # type: ignore[attr-defined]
    return r


def test_fields_of_every_kind_make_one_json_object() -> None:
    formatter = JsonFormatter("inventory")
    line = formatter.format(record(1_800_000_000.25, ms=1.5, count=3, other=object()))
    parsed = json.loads(line)
    assert parsed["msg"] == "rpc Echo"
    assert parsed["service"] == "inventory"
    assert (parsed["ms"], parsed["count"]) == (1.5, 3)
    assert parsed["other"].startswith("<object object")
    assert "\n" not in line
    # keys that are not text, and an integer past 64 bits, are written as the standard library does
    parsed = json.loads(formatter.format(record(1_800_000_000.25, **{"n": 2**70})))
    assert parsed["n"] == 2**70
    r = record(1_800_000_000.25)
    r.fields = {7: "seven"}  # type: ignore[attr-defined]
    assert json.loads(formatter.format(r))["7"] == "seven"


def test_each_line_carries_its_own_second_and_millisecond() -> None:
    formatter = JsonFormatter()
    stamps = [
        json.loads(formatter.format(record(t)))["ts"]
        for t in (1_800_000_000.0625, 1_800_000_000.999, 1_800_000_001.5, 1_800_000_000.125)
    ]
    assert stamps == [
        "2027-01-15T08:00:00.062Z",
        "2027-01-15T08:00:00.999Z",
        "2027-01-15T08:00:01.500Z",
        "2027-01-15T08:00:00.125Z",  # an earlier second again (another thread's record)
    ]
