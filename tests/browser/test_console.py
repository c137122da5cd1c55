"""The web console in Chromium, against the real services: an operator signs in, creates a
campaign (meeting a field error at its field first), previews it as the web SDK draws it,
sends a test, and watches the results chart change when users see the message; the segment
editor's live estimate follows the rule being typed. Every page is screenshotted, has no
console error, and every form control has an accessible name; the campaign form works from
the keyboard alone."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from tests.conftest import eventually
from tests.consoles import running_console
from tests.helpers import Clients, event, fetch_messages, track

SERVICES = ("ingestion", "segmentation", "decision", "delivery")


@pytest.fixture(scope="module")
async def console(stack, console_assets):
    async with running_console({name: stack.target(name) for name in SERVICES}) as running:
        yield running


async def sign_in(page: Page, console, key: str) -> None:
    await page.goto(console.url + "/campaigns")
    await expect(page).to_have_url(re.compile(r"/login\?next=/campaigns$"))
    await page.get_by_label("Admin key").fill(key)
    await page.get_by_label("Admin key").press("Enter")
    await expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()


async def labelled(page: Page) -> int:
    """Asserts every visible form control and button has an accessible name; returns how many."""
    controls = page.locator("main input:not([type=hidden]), main select, main textarea, main button, header button")
    count = await controls.count()
    for i in range(count):
        await expect(controls.nth(i)).to_have_accessible_name(re.compile(r"\S"))
    return count


async def test_sign_in_create_with_a_field_error_preview_test_send_and_the_results_chart(
        page, screenshot, console, app, stack):
    api = Clients(stack.channel)
    await page.goto(console.url + "/login")
    await screenshot(page, "sign-in")
    await sign_in(page, console, app.keys["admin"])
    await screenshot(page, "campaigns-empty")

    await page.get_by_role("link", name="New campaign").click()
    await page.get_by_label("Name", exact=True).fill("Spring sale")
    await page.get_by_role("textbox", name=re.compile("^Key")).fill("spring")
    await page.get_by_label("Status").select_option("CAMPAIGN_STATUS_ACTIVE")
    await page.get_by_label("Priority").fill("high")
    await page.get_by_role("button", name="Save").click()
    # The error is at its field: the input is marked invalid and described by the message.
    priority = page.get_by_label("Priority")
    await expect(priority).to_have_attribute("aria-invalid", "true")
    await expect(priority).to_have_accessible_description("must be a whole number")
    await expect(page.get_by_role("alert")).to_contain_text("priority: must be a whole number")
    await screenshot(page, "campaign-field-error")
    await priority.fill("5")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name=re.compile("Spring sale"))).to_be_visible()
    cid = page.url.rsplit("/", 1)[1]
    await screenshot(page, "campaign")

    # The preview: the web SDK's renderer draws the modal inside the frame, templates filled.
    await page.get_by_role("link", name="Preview and test").click()
    await page.get_by_label("Sample attributes").fill('{"first_name": "Ada"}')
    await page.get_by_role("button", name="Preview").click()
    frame = page.frame_locator("iframe[title^='Variant A, locale en']")
    await expect(frame.get_by_role("dialog")).to_be_visible()
    await expect(frame.get_by_role("dialog")).to_contain_text("Hello Ada")
    await expect(frame.get_by_role("button", name="Show me")).to_be_visible()
    await screenshot(page, "preview")
    # The frame is a picture: the modal inside it does not take the page's keyboard focus,
    # and Tab goes past it to the link that opens it on a page of its own, to try it.
    assert await page.evaluate("document.activeElement === document.body")
    await page.get_by_role("button", name="Preview").focus()
    await page.keyboard.press("Tab")
    try_it = page.get_by_role("link", name="Try variant A (en) on its own page")
    await expect(try_it).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog")).to_contain_text("Hello Ada")
    # Focus is in the dialog, as on a real page.
    assert await page.evaluate("document.querySelector('[role=dialog]').contains(document.activeElement)")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await page.go_back()

    # A test send reaches the user's next pull, marked as a test.
    await page.get_by_label("User id", exact=True).last.fill("tester-7")
    await page.get_by_role("button", name="Send test").click()
    await expect(page.get_by_role("status")).to_contain_text("sent to tester-7")
    await screenshot(page, "test-sent")
    [sent] = await fetch_messages(api, app, "tester-7")
    assert sent.test and sent.content.title == "Hello there"

    # Results: the funnel changes once a user is shown the message.
    await page.goto(f"{console.url}/campaigns/{cid}/results")
    funnel = page.locator("#funnel-chart svg")
    await expect(funnel).to_have_accessible_name(re.compile("Funnel of Spring sale"))
    before = await funnel.inner_html()
    await screenshot(page, "results-before")
    [message] = await fetch_messages(api, app, "shopper-7")
    await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="shopper-7", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
        metadata=app.auth("client"))

    async def changed() -> bool:
        await page.reload()
        return await funnel.inner_html() != before

    await eventually(changed, timeout=15, interval=0.3)
    row = page.get_by_role("row", name=re.compile(r"^A "))
    await expect(row.get_by_role("cell").nth(1)).to_have_text("1")  # delivered
    await screenshot(page, "results-after")


async def test_every_page_is_labelled_and_the_segment_estimate_follows_the_rule(page, screenshot, console, app, stack):
    api = Clients(stack.channel)
    await api.ingestion.TrackEvents(track([event(f"o-{i}", "reader-1", "app_open") for i in range(3)]),
                                    metadata=app.auth("events"))
    await sign_in(page, console, app.keys["admin"])
    assert await labelled(page) >= 2

    await page.goto(console.url + "/segments/new")
    rule = page.get_by_label("Rule")
    estimate = page.locator("#estimate")
    await rule.fill("event:\n  name: app_open\n  operator: EVENT_OPERATOR_AT_LEAST\n  count: 3\n  window: 604800s\n")
    await expect(estimate).to_contain_text("1 of 1 users (100.0%) match this rule now.", timeout=15_000)
    await rule.fill("event:\n  name: app_open\n  operator: EVENT_OPERATOR_AT_LEAST\n  count: 4\n  window: 604800s\n")
    await expect(estimate).to_contain_text("0 of 1 users (0.0%)")
    await rule.fill("event:\n  name: app_open\n  count: -4\n")
    await expect(estimate).to_contain_text("spec.rule.event.count")
    await rule.fill("event:\n  name: app_open\n  operator: EVENT_OPERATOR_AT_LEAST\n  count: 3\n  window: 604800s\n")
    await page.get_by_label("Name", exact=True).fill("Readers")
    await page.get_by_role("textbox", name=re.compile("^Key")).fill("readers")
    await screenshot(page, "segment-new")
    assert await labelled(page) >= 5
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("link", name="reader-1")).to_be_visible()
    await screenshot(page, "segment")

    pages = {"segments": "/segments", "users": "/users?user=reader-1", "settings": "/settings",
             "campaign-new": "/campaigns/new"}
    for name, path in pages.items():
        await page.goto(console.url + path)
        assert await labelled(page) >= 1, name
        await screenshot(page, name)

    # A campaign with two versions: its edit, versions (a diff), preview and results pages.
    await page.get_by_label("Name", exact=True).fill("Reader promo")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("Name", exact=True).fill("Reader promo, take two")
    assert await labelled(page) >= 9
    await screenshot(page, "campaign-edit")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("link", name=re.compile(r"Versions \(2\)")).click()
    await expect(page.get_by_role("row", name=re.compile("spec.name"))).to_contain_text("Reader promo, take two")
    assert await labelled(page) >= 3
    await screenshot(page, "versions")
    for link, name, heading in (("Preview and test", "preview-page", "Preview"), ("Results", "results", "Results of")):
        await page.get_by_role("link", name="Reader promo, take two").first.click()
        await page.wait_for_url(re.compile(r"/campaigns/[^/?#]+$"))
        await page.get_by_role("link", name=link).click()
        # The page it leads to, loaded (a click returns before the navigation ends).
        await expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        assert await labelled(page) >= 1, name
        await screenshot(page, name)


async def test_the_campaign_form_works_from_the_keyboard_alone(page, console, app):
    await sign_in(page, console, app.keys["admin"])
    await page.goto(console.url + "/campaigns/new")
    await page.locator("body").focus()
    order: list[str] = []
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        if not order or order[-1] != focused:  # a date input takes one Tab per part
            order.append(focused)
        if focused == "Save":
            break
    # Every control, in reading order, after the skip link and the header.
    fields = ["f-name", "f-key", "f-status", "f-priority", "f-delivery_mode", "f-tags", "f-start_time", "f-end_time",
              "f-rest", "Save"]
    assert order[-len(fields):] == fields, order
    assert order[0] == "Skip to content"
    # Filled and saved with keys only.
    await page.get_by_label("Name", exact=True).focus()
    await page.keyboard.type("Typed by keyboard")
    await page.keyboard.press("Tab")
    await page.keyboard.type("keyboard")
    await page.get_by_role("button", name="Save").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=re.compile("Typed by keyboard"))).to_be_visible()
