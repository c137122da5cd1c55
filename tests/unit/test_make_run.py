"""`make run` builds the web SDK and the demo shop page when npm is there (only what changed),
and without npm starts everything else, saying in one line what it skipped and why. A stand-in
`nudge` (in a virtualenv folder of the test's own) takes the place of `nudge run`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from nudgetools.demo_server import SITE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def venv(tmp_path) -> Path:
    """A virtualenv folder `make` takes as set up, whose `nudge` only says it ran."""
    folder = tmp_path / "venv"
    (folder / "bin").mkdir(parents=True)
    nudge = folder / "bin" / "nudge"
    nudge.write_text("#!/bin/sh\necho \"nudge $*\"\n")
    nudge.chmod(0o755)
    (folder / ".installed").touch()
    return folder


def make_run(venv: Path, path: str) -> subprocess.CompletedProcess:
    make = shutil.which("make")
    assert make, "make is needed"
    return subprocess.run([make, "--no-print-directory", "run", f"VENV={venv}"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PATH": path})


def test_without_npm_it_says_what_it_skipped_and_starts_the_rest(venv, tmp_path):
    empty = tmp_path / "no-tools"
    empty.mkdir()
    result = make_run(venv, str(empty))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "make run: npm not found, so the web SDK, the demo shop page and the console's previews were not built and "
        "the demo page is not served (Node 20 and npm build them)",
        f"{venv}/bin/nudge run",
        "nudge run",
    ]


@pytest.mark.timeout(600)
def test_it_builds_the_page_first_and_only_what_changed(venv):
    assert shutil.which("npm"), "the web SDK needs Node 20 and npm"
    first = make_run(venv, os.environ["PATH"])
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.splitlines()[-1] == "nudge run"
    assert (SITE / "index.html").is_file() and (SITE / "shop.js").is_file() and (SITE / "nudge.js").is_file()
    # The console's browser files too (htmx, and the SDK bundle its previews draw with).
    assert (REPO / "console/build/htmx.min.js").is_file() and (REPO / "console/build/nudge.js").is_file()
    started = time.monotonic()
    again = make_run(venv, os.environ["PATH"])
    took = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    # Nothing changed: no build step runs, and the services start at once.
    assert again.stdout.splitlines() == [f"{venv}/bin/nudge run", "nudge run"]
    assert took < 5, took
