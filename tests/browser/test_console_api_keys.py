"""The API keys on the console's Settings page in Chromium, against the real services: an
operator creates a key from the keyboard alone (label, a scope ticked with Space, Enter on the
button), sees its secret once with the note to copy it now, finds it listed, revokes it and
sees it marked revoked; the app's last admin key is kept, with why. Screenshots of each step
are kept, and no page logs a console error (tests/browser/conftest.py)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.test_console import labelled, sign_in
from tests.consoles import running_console

SERVICES = ("ingestion", "segmentation", "decision", "delivery")


@pytest.fixture(scope="module")
async def console(stack, console_assets):
    async with running_console({name: stack.target(name) for name in SERVICES}) as running:
        yield running


async def test_a_key_is_created_from_the_keyboard_shown_once_listed_and_revoked(page, screenshot, console, app):
    await sign_in(page, console, app.keys["admin"])
    await page.goto(console.url + "/settings")
    section = page.locator("section", has=page.get_by_role("heading", name="API keys", exact=True))
    rows = section.locator("tbody tr")
    await expect(rows).to_have_count(3)  # the app's admin, events and client keys
    await expect(section.get_by_role("row", name=re.compile(r"this session's key"))).to_contain_text("admin")
    assert await labelled(page) >= 12
    await screenshot(page, "settings-api-keys")

    # The keyboard alone: type the label, Tab through the scopes (admin, events:write,
    # messages:read), tick with Space, Tab on to the button, Enter.
    await page.get_by_label(re.compile("^Label")).focus()
    await page.keyboard.type("ios-backend")
    for _ in range(3):
        await page.keyboard.press("Tab")
    await expect(page.get_by_role("checkbox", name=re.compile("^messages:read"))).to_be_focused()
    await page.keyboard.press("Space")
    await page.keyboard.press("Tab")  # public
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Create API key")).to_be_focused()
    await page.keyboard.press("Enter")

    created = page.get_by_role("status").filter(has_text="was created")
    await expect(created).to_contain_text(re.compile(r"API key ios-backend \(\w+\) was created"))
    await expect(created).to_contain_text("Copy it now: it will not be shown again.")
    secret = await page.get_by_label("The new key's secret").input_value()
    assert re.fullmatch(r"nudge_\w+_[\w-]+", secret), secret
    key_id = secret.split("_")[1]
    row = section.get_by_role("row", name=re.compile(key_id))
    await expect(row).to_contain_text("ios-backend")
    await expect(row).to_contain_text("messages:read")
    await expect(rows).to_have_count(4)
    await screenshot(page, "api-key-created")

    # Shown once: the page opened again has no secret on it.
    await page.goto(console.url + "/settings")
    await expect(page.get_by_label("The new key's secret")).to_have_count(0)
    assert secret not in await page.content()

    await section.get_by_role("button", name=f"Revoke API key ios-backend ({key_id})").click()
    await expect(page.get_by_role("status").filter(has_text="was revoked")).to_contain_text(
        f"API key ios-backend ({key_id}) was revoked.")
    revoked_row = section.get_by_role("row", name=re.compile(key_id))
    await expect(revoked_row.locator("td").nth(3)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    await expect(revoked_row.get_by_role("button")).to_have_count(0)
    await screenshot(page, "api-key-revoked")

    # The app's last admin key stays, and the page says why (no error page).
    await section.get_by_role("button", name=re.compile(r"^Revoke API key admin .*the key of this session$")).click()
    refused = page.get_by_role("alert").filter(has_text="The key was not revoked")
    await expect(refused).to_contain_text("last active admin key")
    await expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    await expect(section.get_by_role("row", name=re.compile(r"this session's key")).locator("td").nth(3)).to_have_text("no")
    await screenshot(page, "api-key-last-admin")


async def test_the_new_key_forms_problems_are_at_their_fields(page, console, app):
    await sign_in(page, console, app.keys["admin"])
    await page.goto(console.url + "/settings")
    await page.get_by_role("button", name="Create API key").click()
    label = page.get_by_label(re.compile("^Label"))
    await expect(label).to_have_attribute("aria-invalid", "true")
    await expect(label).to_have_accessible_description(re.compile("is required"))
    await expect(page.get_by_role("group", name="Scopes")).to_have_accessible_description(
        re.compile("is required: one or more of"))
