"""The demo shop in Debian's Chromium, through the edge, as a shopper uses it.

One cluster for the module: the four services as processes, delivery as two replicas behind
Envoy, and the shop's backend (nudgetools.demo_server) serving the built page and signing user
tokens, with the demo app and its shop campaigns as `nudge run` makes them. Every page is
subscribed (the SDK's `subscribe()`), so what is asserted is what arrives over the stream and
what the shopper sees.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from dataclasses import dataclass

import grpc
from google.protobuf import json_format
import pytest
from playwright.async_api import Page, expect

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudgetools import demo, demo_server
from nudgetools.cluster import EDGE, Cluster
from tests.conftest import eventually
from tests.consoles import running_console
from tests.e2e.conftest import running
from tests.e2e.test_replicas import per_replica
from tests.helpers import App, Clients, event, own_database, track
from tests.web_site import built_site

# The first test also waits for the page's build (npm ci on a fresh checkout) and the cluster.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Each message root the SDK attaches, as the page saw it: its id, title, layout class, and the
# wall-clock time (ms) of the first frame after it was attached.
OBSERVE = """
window.nudgeSeen = [];
new MutationObserver((records) => {
  for (const record of records) for (const node of record.addedNodes) {
    if (!(node instanceof HTMLElement) || !node.classList.contains("nudge-message")) continue;
    const seen = {id: node.dataset.nudgeMessageId, title: node.querySelector(".nudge-title")?.textContent ?? "",
                  layout: [...node.classList].find((c) => c !== "nudge-message") ?? ""};
    window.nudgeSeen.push(seen);
    requestAnimationFrame(() => { seen.at = performance.timeOrigin + performance.now(); });
  }
}).observe(document, {childList: true, subtree: true});
"""


@dataclass
class Shop:
    url: str
    cluster: Cluster
    api: Clients
    app: App
    # The shop's campaigns by key (nudgetools.demo.shop_campaigns).
    campaigns: dict[str, str]

    async def track(self, user: str, name: str, **properties) -> float:
        """An event from the app's backend; returns the wall-clock time it was acknowledged."""
        reply = await self.api.ingestion.TrackEvents(track([event(secrets.token_hex(8), user, name, **properties)]),
                                                     metadata=self.app.auth("events"))
        assert reply.accepted_count == 1
        return time.time()

    async def stats(self, key: str) -> delivery_pb.VariantStats:
        reply = await self.api.delivery.GetCampaignStats(
            delivery_pb.GetCampaignStatsRequest(campaign_id=self.campaigns[key]), metadata=self.app.auth("admin"))
        [variant] = [v for v in reply.variants if not v.control]
        return variant

    async def open(self, page: Page, user: str, name: str = "") -> None:
        """The shop signed in as `user` (a returning shopper), once its stream is live."""
        await page.add_init_script(OBSERVE)
        await page.goto(f"{self.url}/?user={user}&name={name or user}")
        await expect(page.locator("#stream")).to_have_text("Live")


def new_user(prefix: str = "shopper") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def seen(page: Page) -> list[dict]:
    return await page.evaluate("window.nudgeSeen")


@pytest.fixture(scope="module")
async def shop(database_url, tmp_path_factory):
    site = built_site()
    folder = tmp_path_factory.mktemp("shop")
    # The page's port is held (bound, not listening) until its server starts, so that the
    # cluster's own picks cannot take it meanwhile.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        page_origin = demo_server.origin("127.0.0.1", port)
        # The edge takes browsers from the shop's origin only, as an operator would list it.
        async with own_database(database_url, "browser") as url, \
                running(url, folder / "logs", replicas={"delivery": 2}, edge=True, edge_origins=(page_origin,),
                        NUDGE_INGESTION_OUTBOX_MAX_BACKOFF_SECONDS="0.5") as cluster, \
                grpc.aio.insecure_channel(cluster.target(EDGE)) as channel:
            # The demo app as `nudge run` makes it: keys, the shop's signing key, its campaigns.
            app_id, keys, _ = await demo.app_keys(url, folder / "demo-keys.json")
            signer, registered = await demo.shop_signer(url, app_id, folder)
            assert registered
            campaigns = await demo.seed_shop(cluster.target("decision"), keys["admin"])
            assert set(campaigns) == {"shop-welcome", "shop-abandoned-cart", "shop-checkout-survey"}
            held.close()
            cluster.sidecars["demo"] = demo_server.sidecar("127.0.0.1", port, f"http://{cluster.edge.target}",
                                                           keys[demo.PUBLIC_LABEL], signer.key_file, signer.kid,
                                                           site=site)
            cluster.start(("demo",))
            await cluster.wait_ready(names=("demo",))
            yield Shop(page_origin, cluster, Clients(lambda _: channel), App(app_id, keys), campaigns)


async def test_signing_up_shows_the_welcome_and_its_click_is_counted(shop, page, screenshot):
    await page.add_init_script(OBSERVE)
    await page.goto(shop.url)
    before = await shop.stats("shop-welcome")
    await page.get_by_label("Your name").fill("Ada")
    await page.get_by_role("button", name="Sign up").click()
    dialog = page.get_by_role("dialog", name="Welcome, Ada!")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#stream")).to_have_text("Live")
    await screenshot(page, "welcome")
    await dialog.get_by_role("button", name="Start shopping").click()
    await expect(dialog).to_be_hidden()

    async def clicked():
        now = await shop.stats("shop-welcome")
        return now if now.clicks_by_button["shop"] == before.clicks_by_button["shop"] + 1 else None

    after = await eventually(clicked, timeout=10)
    assert after.impressions == before.impressions + 1
    assert after.delivered == before.delivered + 1
    assert [s["title"] for s in await seen(page)] == ["Welcome, Ada!"]


async def test_a_triggered_modal_appears_within_a_second_of_the_event(shop, page, screenshot):
    user = new_user()
    await shop.open(page, user, "Grace")
    acknowledged = await shop.track(user, "signup", source="shop", first_name="Grace")
    dialog = page.get_by_role("dialog", name="Welcome, Grace!")
    await expect(dialog).to_be_visible()
    [shown] = await eventually(lambda: _framed(page), timeout=5)
    latency = shown["at"] / 1000 - acknowledged
    print(f"TrackEvents acknowledged → modal on screen: {latency * 1000:.0f} ms")
    assert 0 < latency < 1.0
    await screenshot(page, "modal-over-the-shop")


async def _framed(page: Page) -> list[dict] | None:
    """What the page has seen, once every message has had its first frame."""
    found = await seen(page)
    return found if found and all("at" in s for s in found) else None


async def test_leaving_with_items_brings_the_reminder_on_screen_when_back(shop, page, screenshot):
    await page.add_init_script(OBSERVE)
    await page.goto(shop.url)
    await page.get_by_label("Your name").fill("Ada")
    await page.get_by_role("button", name="Sign up").click()
    await page.get_by_role("dialog", name="Welcome, Ada!").get_by_role("button", name="Later").click()
    await page.get_by_role("button", name="Add Nudge mug to cart").click()
    await page.get_by_role("button", name="Add T-shirt to cart").click()
    await expect(page.locator("#cart-total")).to_have_text("36.50")
    await expect(page.locator("#activity")).to_contain_text("event added_to_cart sent")
    await page.get_by_role("button", name="Leave the shop").click()
    await expect(page.get_by_role("heading", name="You left the shop")).to_be_visible()
    await expect(page.locator("#stream")).to_have_text("Not connected")
    await page.get_by_role("button", name="Come back").click()
    await expect(page.locator("#stream")).to_have_text("Live")
    # The reminder comes due 5 s after leaving, and is pushed to the page that is back.
    reminder = page.get_by_role("dialog", name="You left something behind")
    await expect(reminder).to_be_visible(timeout=15_000)
    await expect(reminder).to_contain_text("Your cart of 36.5 is waiting, Ada.")
    await screenshot(page, "abandoned-cart")
    await reminder.get_by_role("button", name="Back to my cart").click()
    await expect(reminder).to_be_hidden()
    assert [s["title"] for s in await seen(page)] == ["Welcome, Ada!", "You left something behind"]


async def test_a_survey_answer_after_checkout_is_recorded(shop, page, screenshot):
    user = new_user()
    await shop.open(page, user)
    await page.get_by_role("button", name="Add Hoodie to cart").click()
    await expect(page.locator("#activity")).to_contain_text("event added_to_cart sent")
    await page.get_by_role("button", name="Check out").click()
    survey = page.get_by_role("dialog", name="Thanks for your order!")
    await expect(survey).to_be_visible()
    await survey.get_by_role("radio", name="4 of 5").check()
    await survey.get_by_role("radio", name="A search").check()
    await screenshot(page, "checkout-survey")
    await survey.get_by_role("button", name="Submit").click()
    await expect(survey).to_be_hidden()

    async def answers():
        reply = await shop.api.delivery.ListSurveyAnswers(
            delivery_pb.ListSurveyAnswersRequest(campaign_id=shop.campaigns["shop-checkout-survey"]),
            metadata=shop.app.auth("admin"))
        return [(a.question_id, a.rating, list(a.choices)) for a in reply.answers if a.user_id == user] or None

    assert await eventually(answers, timeout=10) == [("ease", 4, []), ("found", 0, ["A search"])]


async def test_a_token_for_another_user_is_refused_and_shows_nothing(shop, page):
    victim, mallory = new_user("victim"), new_user("mallory")
    # A welcome waits in the victim's inbox (they have no page open).
    await shop.track(victim, "signup", source="shop", first_name="Victor")
    await shop.open(page, mallory)
    # Mallory's page, with Mallory's own valid token, asks for the victim's messages.
    refused = await page.evaluate("""async (victim) => {
        const sdk = await import("./nudge.js");
        const config = await (await fetch("/config.json")).json();
        const me = document.getElementById("account-id").textContent;
        const token = (await (await fetch("/token?user=" + encodeURIComponent(me))).json()).token;
        const streamErrors = [];
        const nudge = new sdk.Nudge({endpoint: config.endpoint, apiKey: config.apiKey, userToken: token,
                                     userId: victim, onError: (e) => streamErrors.push(e.code)});
        let fetched;
        try { await nudge.fetchMessages(); fetched = "answered"; } catch (e) { fetched = {code: e.code, message: e.rawMessage}; }
        const subscription = nudge.subscribe();
        await subscription.done;
        return {fetched, streamErrors, state: subscription.state};
    }""", victim)
    permission_denied = 7  # connect's Code.PermissionDenied, as gRPC numbers it
    assert refused["fetched"]["code"] == permission_denied, refused
    assert refused["streamErrors"] == [permission_denied] and refused["state"] == "closed", refused
    assert await page.locator(".nudge-message").count() == 0
    assert await seen(page) == []
    # Nothing was handed out to Mallory: the victim's own page gets the welcome.
    await shop.open(page, victim, "Victor")
    await expect(page.get_by_role("dialog", name="Welcome, Victor!")).to_be_visible()


def _layout_campaign(layout: str, content: dict) -> decision_pb.Campaign:
    """Shown on `show_layout` with `layout` naming it, as often as asked."""
    return json_format.ParseDict({
        "name": f"Layout: {layout}", "status": "CAMPAIGN_STATUS_ACTIVE", "deliveryMode": "DELIVERY_MODE_TRIGGERED",
        "triggers": [{"eventName": "show_layout", "propertyFilters": [
            {"name": "layout", "operator": "PROPERTY_OPERATOR_EQUALS", "value": layout}]}],
        "caps": {"bypassAppCaps": True},
        "variants": [{"id": "A", "weight": 1, "defaultLocale": "en", "contents": [{"locale": "en", "content": content}]}],
    }, decision_pb.Campaign())


LATER = {"id": "later", "text": "Later", "action": "BUTTON_ACTION_TYPE_DISMISS"}
SHOP_NOW = {"id": "shop", "text": "Shop now", "action": "BUTTON_ACTION_TYPE_DEEP_LINK", "target": "app://shop"}
# Each layout, and how the shopper closes it once it is on screen.
LAYOUTS = {
    "banner": ({"layout": "LAYOUT_BANNER", "title": "Free shipping this week",
                "body": "On every order, no minimum.", "buttons": [SHOP_NOW]}, "Close"),
    "modal": ({"layout": "LAYOUT_MODAL", "title": "Members save 10%", "body": "Join for free and save on every order.",
               "buttons": [SHOP_NOW, LATER]}, "Later"),
    "full-screen": ({"layout": "LAYOUT_FULL_SCREEN", "title": "The summer sale is on",
                     "body": "Up to half off hoodies and posters, until Sunday.",
                     "theme": {"backgroundColor": "#0b1f44", "textColor": "#ffffff", "buttonColor": "#ffd33d",
                               "buttonTextColor": "#0b1f44"},
                     "buttons": [SHOP_NOW, LATER]}, "Later"),
    "card": ({"layout": "LAYOUT_CARD", "title": "Your order ships tomorrow",
              "body": "We will send the tracking link by e-mail.", "buttons": [LATER]}, "Later"),
    "carousel": ({"layout": "LAYOUT_CAROUSEL", "title": "New this week", "slides": [
        {"title": "The Nudge mug", "body": "Now in blue.", "buttons": [
            {"id": "next", "text": "Next", "action": "BUTTON_ACTION_TYPE_NEXT"}]},
        {"title": "The hoodie", "body": "Warmer than ever."},
        {"title": "The poster", "body": "Signed by the team."}]}, "Close"),
    "survey": ({"layout": "LAYOUT_SURVEY", "title": "One question", "questions": [
        {"id": "colour", "text": "Which colour should the next mug be?", "type": "QUESTION_TYPE_SINGLE_CHOICE",
         "choices": ["Red", "Green", "Blue"]}], "buttons": [LATER]}, "Later"),
    "tooltip": ({"layout": "LAYOUT_TOOLTIP", "title": "Ready when you are", "body": "Check out in one click.",
                 "anchor": {"elementId": "checkout", "step": 1},
                 "buttons": [{"id": "ok", "text": "Got it", "action": "BUTTON_ACTION_TYPE_NEXT"}]}, "Got it"),
}


async def test_every_layout_on_the_shop_page_with_a_screenshot_each(shop, page, screenshot):
    for layout, (content, _) in LAYOUTS.items():
        await shop.api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(
            campaign=_layout_campaign(layout, content)), metadata=shop.app.auth("admin"))
    user = new_user()
    await shop.open(page, user)
    await page.get_by_role("button", name="Add Poster to cart").click()
    for layout, (content, close) in LAYOUTS.items():
        await shop.track(user, "show_layout", layout=layout)
        root = page.locator(f".nudge-message.nudge-{layout}")
        await expect(root).to_be_visible()
        await expect(root).to_contain_text(content["title"])
        path = await screenshot(page, layout)
        assert path.stat().st_size > 10_000  # a picture of the page, not an empty frame
        await root.get_by_role("button", name=close, exact=True).first.click()
        await expect(root).to_have_count(0)
    assert [s["layout"] for s in await seen(page)] == [f"nudge-{layout}" for layout in LAYOUTS]


async def test_a_stream_cut_by_a_delivery_replica_dying_resumes_without_a_duplicate(shop, page):
    await shop.api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(campaign=json_format.ParseDict({
        "name": "Ping", "status": "CAMPAIGN_STATUS_ACTIVE", "deliveryMode": "DELIVERY_MODE_TRIGGERED",
        "triggers": [{"eventName": "ping"}], "caps": {"bypassAppCaps": True},
        "variants": [{"id": "A", "weight": 1, "defaultLocale": "en", "contents": [{"locale": "en", "content": {
            "layout": "LAYOUT_BANNER", "title": "ping {{ event.n }}"}}]}],
    }, decision_pb.Campaign())), metadata=shop.app.auth("admin"))
    user = new_user()
    await shop.open(page, user)
    # The cut stream's response ends mid-body, which Chromium reports on the console.
    page.nudge_expected_errors.append(r"^Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING$")

    async def close_next() -> str:
        """The title of the next banner on screen, once the shopper has closed it."""
        banner = page.locator(".nudge-banner")
        await expect(banner).to_be_visible(timeout=15_000)
        title = await banner.locator(".nudge-title").text_content()
        shown = page.locator(f'[data-nudge-message-id="{await banner.get_attribute("data-nudge-message-id")}"]')
        await banner.get_by_role("button", name="Close").click()
        await expect(shown).to_have_count(0)  # the next one may be on screen at once
        return title

    for n in (1, 2):
        await shop.track(user, "ping", n=str(n))
        assert await close_next() == f"ping {n}"
    # The page's stream is the only one open: the replica that holds it has one call active.
    held = await eventually(lambda: _one_stream(shop.cluster), timeout=10)
    # A ping on its way as the replica holding the stream dies, and two more while the page
    # reconnects to the other replica and resumes after the last message it saw.
    await shop.track(user, "ping", n="3")
    shop.cluster.processes[held].kill()
    await expect(page.locator("#stream")).not_to_have_text("Live")
    for n in (4, 5):
        await shop.track(user, "ping", n=str(n))
    await expect(page.locator("#stream")).to_have_text("Live", timeout=15_000)
    # Released by decision as each comes due, so in any order.
    assert sorted([await close_next() for _ in range(3)]) == ["ping 3", "ping 4", "ping 5"]
    await shop.track(user, "ping", n="6")
    assert await close_next() == "ping 6"
    await asyncio.sleep(1)  # a duplicate, if any, would be on screen by now
    assert await page.locator(".nudge-message").count() == 0
    titles = [s["title"] for s in await seen(page)]
    assert sorted(titles) == [f"ping {n}" for n in range(1, 7)], titles
    # The replica starts again, and the edge takes it back, for the tests after this one.
    shop.cluster.start((held,))
    await shop.cluster.wait_ready(names=(held, EDGE))


async def _one_stream(cluster: Cluster) -> str | None:
    active = await per_replica(cluster, "delivery", "rq_active")
    holding = [name for name, n in active.items() if n]
    return holding[0] if len(holding) == 1 and active[holding[0]] == 1 else None


async def test_a_test_sent_from_the_console_appears_on_the_shoppers_page(shop, browser, page, screenshot,
                                                                          console_assets):
    """The operator's path end to end: the console (through the edge, as it runs in `make
    run`) sends a campaign's message to a user as a test, and it appears on that user's open
    shop page over the stream, marked as a test and counted nowhere."""
    user = new_user("tester")
    await shop.open(page, user, "Grace")
    before = await shop.stats("shop-welcome")
    operator = await browser.new_context()
    try:
        desk = await operator.new_page()
        async with running_console(shop.cluster.target(EDGE)) as console:
            await desk.goto(console.url + "/login")
            await desk.get_by_label("Admin key").fill(shop.app.keys["admin"])
            await desk.get_by_label("Admin key").press("Enter")
            await expect(desk.get_by_role("heading", name="Campaigns")).to_be_visible()
            await desk.goto(f"{console.url}/campaigns/{shop.campaigns['shop-welcome']}/preview")
            await desk.get_by_label("User id", exact=True).last.fill(user)
            await desk.get_by_role("button", name="Send test").click()
            await expect(desk.get_by_role("status")).to_contain_text(f"sent to {user}")
        dialog = page.get_by_role("dialog", name="Welcome, friend!")
        await expect(dialog).to_be_visible(timeout=5000)
        await screenshot(page, "test-from-console")
        [shown] = await seen(page)
        assert shown["title"] == "Welcome, friend!"
    finally:
        await operator.close()
    # A test send counts toward no statistics.
    assert (await shop.stats("shop-welcome")).delivered == before.delivered
