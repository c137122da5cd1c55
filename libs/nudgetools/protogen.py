"""Generates the Python protobuf and gRPC code (with .pyi stubs) from `protos/`.

`make protos` writes into `libs/`, and the public protos again into the client package
(`clients/python`, under its own import name); the test suite writes into a scratch folder and
compares, so generated code that disagrees with the protos fails CI.

It also writes the descriptor set the edge's gRPC-JSON transcoder reads (`--descriptor-set`):
the public protos with everything they import, and google.rpc's Status and error details, so
Envoy can print an error's details (BadRequest field violations, ErrorInfo) as JSON. It is
committed twice, like the edge's configuration: `deploy/envoy/nudge.pb` (compose mounts it)
and a copy in the Kubernetes base (kustomize loads nothing outside its root).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

import google.rpc
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "protos"
CLIENT_PROTO_DIR = REPO / "clients" / "python" / "src" / "nudge_client" / "_proto"
# The client's copy lives under this package, so `nudge_client` never shadows `nudge`.
CLIENT_PACKAGE = "nudge_client._proto"
DESCRIPTOR_SETS = (REPO / "deploy" / "envoy" / "nudge.pb", REPO / "deploy" / "kubernetes" / "base" / "nudge.pb")
# Not imported by any Nudge proto, yet the types of the details every error carries
# (nudgelib.errors): without them the transcoder could not print those details.
ERROR_PROTOS = ("google/rpc/status.proto", "google/rpc/error_details.proto")


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


def is_public(proto: Path) -> bool:
    """The protos a client needs: the shared types and the public services (internal
    service-to-service RPCs stay out of the client package)."""
    return not proto.name.endswith("_internal_service.proto")


def descriptor_set() -> bytes:
    """The serialized FileDescriptorSet of the public protos and the error protos, imports
    included, without source info (Envoy needs none; it only makes the file larger)."""
    well_known = resources.files("grpc_tools") / "_proto"
    # googleapis-common-protos ships google/rpc/*.proto beside its generated modules.
    googleapis = Path(google.rpc.__path__[0]).parents[1]
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files() if is_public(p)]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "nudge.pb"
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"-I{googleapis}", "--include_imports",
                f"--descriptor_set_out={out}", *files, *ERROR_PROTOS]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        return out.read_bytes()


def stale_descriptor_sets() -> list[Path]:
    """The committed descriptor sets that differ from what the protos give now."""
    fresh = descriptor_set()
    return [p for p in DESCRIPTOR_SETS if not p.exists() or p.read_bytes() != fresh]


def generate_client(out_dir: Path) -> list[Path]:
    """The public protos' code under `nudge_client._proto`: generated as usual, then its
    imports of `nudge.` rewritten to the client's own package. The serialized descriptors are
    unchanged, so in a process that loads both copies (the monorepo's tests) protobuf finds the
    same files twice, takes them as one, and the message classes are shared."""
    with tempfile.TemporaryDirectory() as scratch:
        written = generate(Path(scratch))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        (out_dir / "__init__.py").write_text("")
        result = []
        for path in written:
            rel = path.relative_to(scratch)
            if path.name.endswith(("_internal_service_pb2.py", "_internal_service_pb2.pyi",
                                   "_internal_service_pb2_grpc.py")):
                continue
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            text = re.sub(r"^(from|import) nudge\.", rf"\1 {CLIENT_PACKAGE}.nudge.", path.read_text(), flags=re.M)
            target.write_text(text)
            result.append(target)
        for init in Path(scratch).rglob("__init__.py"):
            target = out_dir / init.relative_to(scratch)
            if target.parent.exists():
                target.write_text("")
        return sorted(result)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--descriptor-set"]:
        fresh = descriptor_set()
        for path in DESCRIPTOR_SETS:
            if not path.exists() or path.read_bytes() != fresh:
                path.write_bytes(fresh)
                print(f"wrote {path.relative_to(REPO)}")
        sys.exit(0)
    if sys.argv[1:2] == ["--client"]:
        target = Path(sys.argv[2]) if len(sys.argv) > 2 else CLIENT_PROTO_DIR
        for path in generate_client(target):
            print(path.relative_to(target))
        sys.exit(0)
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "libs"
    for path in generate(target):
        print(path.relative_to(target))
