"""The web SDK and the demo shop page, built as `make run` builds them (`make web-build`:
quick when nothing changed), for the tests that serve the page."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from nudgetools.cluster import REPO
from nudgetools.demo_server import SITE


@functools.cache
def built_site() -> Path:
    """The folder of the built shop page; fails (never skips) without Node and npm."""
    missing = [tool for tool in ("node", "npm", "make") if shutil.which(tool) is None]
    assert not missing, f"the demo page needs Node 20, npm and make to build; not found: {', '.join(missing)}"
    # npm ci on a fresh checkout downloads the packages; later builds take seconds.
    result = subprocess.run(["make", "--no-print-directory", "web-build"], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"`make web-build` failed:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    assert (SITE / "shop.js").is_file() and (SITE / "nudge.js").is_file()
    return SITE
