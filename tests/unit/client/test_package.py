"""The client package's own copy of the public stubs agrees with `protos/` (regenerate with
`make protos`), and its pins are the repository's."""

from __future__ import annotations

import filecmp
import tomllib
from pathlib import Path

from nudgetools import protogen

REPO = Path(__file__).resolve().parents[3]
CLIENT = REPO / "clients" / "python"


def test_the_clients_generated_code_matches_the_protos(tmp_path):
    fresh_dir = tmp_path / "_proto"
    protogen.generate_client(fresh_dir)
    committed_dir = protogen.CLIENT_PROTO_DIR

    def files(root: Path) -> set[Path]:
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".pyi"}}
    fresh, committed = files(fresh_dir), files(committed_dir)
    assert fresh and fresh == committed, "run `make protos`: the client's generated files differ in name"
    stale = [str(p) for p in sorted(fresh) if not filecmp.cmp(fresh_dir / p, committed_dir / p, shallow=False)]
    assert not stale, f"run `make protos`: stale generated code in the client package: {stale}"


def test_the_client_has_no_internal_service_and_imports_only_its_own_copy():
    for path in protogen.CLIENT_PROTO_DIR.rglob("*.py*"):
        assert "internal" not in path.name
        text = path.read_text()
        assert "\nfrom nudge." not in text and "\nimport nudge." not in text, path


def test_the_clients_pins_are_the_repositorys():
    repo = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((CLIENT / "pyproject.toml").read_text())
    pins = {d.split("==")[0]: d for d in repo["dependencies"] + repo["optional-dependencies"]["dev"]}
    for dep in client["project"]["dependencies"]:
        assert "==" in dep and pins.get(dep.split("==")[0]) == dep, dep
    assert client["build-system"] == tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
