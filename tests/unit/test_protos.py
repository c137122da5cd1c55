"""The API definition: buf lint (STANDARD) is clean and the generated code is up to date."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

from nudgetools import protogen

REPO = Path(__file__).resolve().parents[2]


def test_buf_lint_is_clean():
    buf = shutil.which("buf", path=str(Path(sys.executable).parent))
    assert buf, "buf (from the buf-bin wheel) is not installed next to this Python"
    result = subprocess.run([buf, "lint"], cwd=REPO / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_matches_the_protos(tmp_path):
    fresh = {p.relative_to(tmp_path) for p in protogen.generate(tmp_path)}
    committed = {p.relative_to(REPO / "libs") for p in (REPO / "libs" / "nudge").rglob("*")
                 if p.is_file() and p.suffix in {".py", ".pyi"}}
    assert fresh == committed, "run `make protos`: generated files differ in name"
    stale = [str(p) for p in sorted(fresh) if not filecmp.cmp(tmp_path / p, REPO / "libs" / p, shallow=False)]
    assert not stale, f"run `make protos`: stale generated code in {stale}"
