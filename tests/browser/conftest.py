"""A real browser for the tests of pages: Debian's Chromium, driven by Playwright.

Playwright never downloads a browser here: it is pointed at the system's Chromium
(`/usr/bin/chromium`, the Debian package that `.ci/run` installs when missing, or
`NUDGE_CHROMIUM`). Every page a test opens fails the test at teardown if it logged a console
error or threw an uncaught exception, unless the message matches a regex the test appended to
`page.nudge_expected_errors` (a refused token, say, that the page is meant to report).
Screenshots go to the test-artifacts folder (`build/test-artifacts/screenshots`, or
`NUDGE_TEST_ARTIFACTS`), kept after the run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parents[2]

# Headless without a sandbox (CI runs as root) or a GPU, and no background requests to the
# outside: the machine reaches only package registries.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str:
    path = os.environ.get("NUDGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(
            f"no Chromium at {path}: install Debian's `chromium` package (.ci/run does) or set NUDGE_CHROMIUM")
    return path


def artifacts_dir() -> Path:
    base = Path(os.environ.get("NUDGE_TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts")
    folder = base / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a context of its own (no cookies or storage shared between tests)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    errors: list[str] = []
    opened.nudge_expected_errors = []  # regexes of console errors this test expects
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    try:
        yield opened
    finally:
        await context.close()
    unexpected = [e for e in errors if not any(re.search(p, e) for p in opened.nudge_expected_errors)]
    assert not unexpected, f"the page logged errors: {unexpected}"


@pytest.fixture
def screenshot(request) -> Callable:
    """`await screenshot(page, "modal")` keeps a full-page PNG named for the test and `name`."""
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)

    async def take(target: Page, name: str) -> Path:
        path = artifacts_dir() / f"{test}-{name}.png"
        await target.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(scope="module")
def console_assets() -> None:
    """htmx and the web SDK's bundle in console/build, as `make run` builds them."""
    built = subprocess.run(["make", "--no-print-directory", "console"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, f"`make console` failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}"
