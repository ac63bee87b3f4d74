"""The committed gRPC stubs are exactly what `python -m proto.generate` makes from inventory.proto:
a proto change without regenerated stubs fails here."""

from __future__ import annotations

from pathlib import Path

from proto.generate import ROOT, generate

STUBS = ("inventory_pb2.py", "inventory_pb2.pyi", "inventory_pb2_grpc.py")


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    generate(tmp_path)
    for name in STUBS:
        fresh = (tmp_path / "proto" / name).read_text()
        committed = (ROOT / "proto" / name).read_text()
        assert fresh == committed, f"proto/{name} is stale: run `python -m proto.generate`"
