"""The web SDK (clients/web, TypeScript) is built and tested with the rest: `make web` installs
its pinned packages (only when package-lock.json changed), type-checks, bundles (the SDK, and
the demo shop page with it) and runs its vitest suite, which includes the check that its
generated code matches the protos."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


# npm ci on a fresh checkout downloads the packages; later runs reuse node_modules.
@pytest.mark.timeout(900)
def test_web_sdk_builds_and_its_tests_pass():
    missing = [tool for tool in ("node", "npm", "make") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the web SDK needs Node 20, npm and make to build and test; not found: {', '.join(missing)}")
    result = subprocess.run(["make", "--no-print-directory", "web"], cwd=REPO, capture_output=True, text=True,
                            timeout=880)
    assert result.returncode == 0, (
        f"`make web` failed (exit {result.returncode}):\n{result.stdout[-8000:]}\n{result.stderr[-4000:]}")
    # The bundle a page loads with <script type="module">, and the demo shop page built with it.
    assert (REPO / "clients/web/dist/nudge.js").stat().st_size > 0
    for page_file in ("index.html", "shop.css", "shop.js", "nudge.js"):
        assert (REPO / "clients/web/dist/demo" / page_file).stat().st_size > 0, page_file
