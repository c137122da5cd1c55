"""Generates the Python protobuf and gRPC code (with .pyi stubs) from `protos/`.

`make protos` writes into `libs/`; the test suite writes into a scratch folder and compares,
so generated code that disagrees with the protos fails CI.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "protos"


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Generates code for every proto into out_dir; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for package_dir in {(out_dir / f).parent for f in files}:
        # Every folder up to `nudge/` becomes a regular package so setuptools finds it.
        d = package_dir
        while d != out_dir:
            init = d / "__init__.py"
            if not init.exists():
                init.write_text("")
            d = d.parent
    for path in sorted((out_dir / "nudge").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".pyi"}:
            written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "libs"
    for path in generate(target):
        print(path.relative_to(target))
