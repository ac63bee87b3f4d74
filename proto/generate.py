"""Regenerate the gRPC stubs from inventory.proto: `python -m proto.generate [OUT_DIR]`.

The stubs are committed; tests/proto/test_stubs_fresh.py regenerates them into a temporary folder
and fails when the committed ones differ."""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "protoc",
            f"-I{ROOT}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(ROOT / "proto" / "inventory.proto"),
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with {rc}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
