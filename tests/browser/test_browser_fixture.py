"""The browser the page tests stand on: Debian's Chromium runs module scripts, its console
errors reach the test, and screenshots are kept as artifacts."""

from __future__ import annotations

import struct

PAGE = """<!doctype html><html lang="en"><title>t</title>
<main><h1>Hello</h1><button type="button">Go</button></main>
<script type="module">document.querySelector('h1').textContent = 'Ready'; console.error('refused: USER_TOKEN_WRONG_USER');</script>
</html>"""


async def test_system_chromium_runs_pages_and_keeps_screenshots(page, screenshot):
    page.nudge_expected_errors.append(r"^refused: USER_TOKEN_WRONG_USER$")
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.set_content(PAGE)
    await page.get_by_role("heading", name="Ready").wait_for()
    assert errors == ["refused: USER_TOKEN_WRONG_USER"]

    path = await screenshot(page, "hello")
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1280, 800)
