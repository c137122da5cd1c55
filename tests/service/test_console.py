"""The web console on a real port against the real services (this process's stack), driven
over HTTP as a browser would: sign-in with an admin key, the session cookie and its expiry,
CSRF refusals, campaigns created and edited through the form with each problem shown at its
field, pause/resume/archive, versions with a diff, previews as the web SDK fetches them, test
sends, results, segments, users and settings."""

from __future__ import annotations

import html
import re

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from console.forms import STARTER
from console.grpcweb import CONTENT_TYPE
from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as segmentation_pb
from tests.conftest import eventually
from tests.consoles import csrf_of, running_console, sign_in
from tests.helpers import Clients, event, expect_error, fetch_messages, track

SERVICES = ("ingestion", "segmentation", "decision", "delivery")


@pytest.fixture(scope="module")
async def console(stack):
    async with running_console({name: stack.target(name) for name in SERVICES}) as running:
        yield running


@pytest.fixture
async def api(stack) -> Clients:
    # In the event loop: gRPC's aio channels are made on the running loop.
    return Clients(stack.channel)


def text_of(page: str) -> str:
    """The page's text as a person reads it: tags dropped, entities decoded, spaces folded."""
    inline = re.sub(r"</?(code|strong|em|span|a)\b[^>]*>", "", page)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", inline))).strip()


def campaign_fields(**values: str) -> dict[str, str]:
    return {"name": "Spring sale", "key": "", "status": "CAMPAIGN_STATUS_ACTIVE", "priority": "5",
            "delivery_mode": "DELIVERY_MODE_ON_REQUEST", "start_time": "", "end_time": "", "tags": "promo",
            "rest": STARTER, **values}


async def create_through_form(http, **values: str) -> str:
    page = await http.get("/campaigns/new")
    saved = await http.post("/campaigns/new", data={"csrf": csrf_of(page.text), **campaign_fields(**values)})
    assert saved.status_code == 303, text_of(saved.text)
    return saved.headers["location"].rsplit("/", 1)[1]


async def test_sign_in_keeps_the_key_on_the_server_and_gives_the_browser_a_strict_http_only_cookie(console, app):
    async with console.client() as http:
        signed = await sign_in(http, app.keys["admin"])
        assert signed.status_code == 303 and signed.headers["location"] == "/campaigns"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("nudge_console_session=")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "max-age", "path", "samesite"} <= attributes
        assert "samesite=strict" in cookie.lower()
        assert app.keys["admin"] not in cookie  # only a random id leaves the server
        listed = await http.get("/campaigns")
        assert listed.status_code == 200 and "No campaigns yet." in text_of(listed.text)
        assert "content-security-policy" in listed.headers and listed.headers["x-frame-options"] == "SAMEORIGIN"


async def test_a_key_that_is_not_an_admin_key_is_refused_at_sign_in_with_why(console, app):
    async with console.client() as http:
        for key, why in ((app.keys["events"], "This key is not an admin key"),
                         ("nudge_nope_nope", "This is not a key of any app"), ("", "Enter an admin key.")):
            refused = await sign_in(http, key)
            assert refused.status_code == 200 and why in text_of(refused.text), key
            assert "nudge_console_session" not in refused.headers.get("set-cookie", "")
        # No session: a page sends the browser to sign in, and back afterwards.
        away = await http.get("/segments?x=1")
        assert away.status_code == 303 and away.headers["location"] == "/login?next=/segments%3Fx%3D1"


async def test_a_session_expires_after_its_idle_time_and_ends_at_sign_out(console, app):
    async with console.signed_in(app.keys["admin"]) as http:
        assert (await http.get("/settings")).status_code == 200
        console.clock.offset += 29 * 60  # within the 30 minutes of idle time: still signed in
        assert (await http.get("/settings")).status_code == 200
        console.clock.offset += 30 * 60 + 1  # 30 minutes without a request
        expired = await http.get("/settings")
        assert expired.status_code == 303 and expired.headers["location"].startswith("/login")
        # A form posted after expiry changes nothing and says why.
        late = await http.post("/campaigns/new", data={"csrf": "x", **campaign_fields()})
        assert late.status_code == 401 and "Your session has ended" in text_of(late.text)
    async with console.signed_in(app.keys["admin"]) as http:
        page = await http.get("/campaigns")
        out = await http.post("/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert (await http.get("/campaigns")).status_code == 303


async def test_a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(console, app, api):
    async with console.signed_in(app.keys["admin"]) as http:
        for token in ("", "forged-token"):
            refused = await http.post("/campaigns/new", data={"csrf": token, **campaign_fields()})
            assert refused.status_code == 403 and "CSRF token" in text_of(refused.text)
        listed = await api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=app.auth("admin"))
        assert list(listed.campaigns) == []
        # Sign-in is protected too (a page of another site cannot sign a browser in).
        async with console.client() as other:
            forged = await other.post("/login", data={"csrf": "x", "key": app.keys["admin"]})
            assert forged.status_code == 403


async def test_a_campaign_created_through_the_form_is_saved_as_typed(console, app, api):
    async with console.signed_in(app.keys["admin"]) as http:
        cid = await create_through_form(http, key="spring", start_time="2026-03-01T09:30", tags="promo, spring")
        got = (await api.decision.GetCampaign(decision_pb.GetCampaignRequest(campaign_id=cid),
                                              metadata=app.auth("admin"))).campaign
        assert (got.name, got.key, got.priority, got.status, list(got.tags)) == (
            "Spring sale", "spring", 5, decision_pb.CAMPAIGN_STATUS_ACTIVE, ["promo", "spring"])
        assert got.start_time.ToJsonString() == "2026-03-01T09:30:00Z"
        assert got.variants[0].contents[0].content.buttons[0].text == "Show me"
        listed = text_of((await http.get("/campaigns")).text)
        assert "Spring sale spring active 2026-03-01 09:30 UTC → no end 5 0 0 0" in listed


async def test_each_problem_of_the_form_is_shown_at_its_field(console, app, api):
    async with console.signed_in(app.keys["admin"]) as http:
        page = await http.get("/campaigns/new")
        rest = STARTER.replace("weight: 1", "weight: -2").replace("LAYOUT_MODAL", "LAYOUT_POPUP")
        shown = await http.post("/campaigns/new", data={"csrf": csrf_of(page.text), **campaign_fields(
            name="", priority="high", rest=rest)})
        assert shown.status_code == 200
        body = shown.text
        # At the inputs: marked invalid, the message beside each, named by its field.
        assert re.search(r'id="f-priority"[^>]*aria-invalid="true" aria-describedby="err-priority"', body)
        assert '<p class="error" id="err-priority">must be a whole number</p>' in body
        # The editor's problems at their lines (line 4 is the variant's weight, 8 its layout).
        assert "line 4: spec.variants[0].weight: -2 is less than the minimum of 0" in text_of(body)
        assert "line 8: spec.variants[0].contents[0].content.layout: 'LAYOUT_POPUP' is not a value here" in text_of(body)
        # What was typed stays in the form, and nothing was created.
        assert 'value="high"' in body and "LAYOUT_POPUP" in body
        listed = await api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=app.auth("admin"))
        assert list(listed.campaigns) == []
        # A key another campaign holds: the service's ALREADY_EXISTS at the key's input.
        await create_through_form(http, key="taken")
        page = await http.get("/campaigns/new")
        again = await http.post("/campaigns/new", data={"csrf": csrf_of(page.text), **campaign_fields(key="taken")})
        assert re.search(r'<p class="error" id="err-key">[^<]*taken[^<]*</p>', again.text)
        # A segment key no segment has, at its line.
        rest = STARTER.replace("audience: {}", "audience:\n  include_segment_ids: [vips]")
        page = await http.get("/campaigns/new")
        unknown = await http.post("/campaigns/new", data={"csrf": csrf_of(page.text), **campaign_fields(rest=rest)})
        assert "line 2: spec.audience.include_segment_ids[0]: no segment has the key 'vips'" in text_of(unknown.text)


async def test_pause_resume_archive_and_the_diff_of_two_versions(console, app, api):
    async with console.signed_in(app.keys["admin"]) as http:
        cid = await create_through_form(http)

        async def status() -> int:
            return (await api.decision.GetCampaign(decision_pb.GetCampaignRequest(campaign_id=cid),
                                                   metadata=app.auth("admin"))).campaign.status

        for action, expected in (("pause", decision_pb.CAMPAIGN_STATUS_PAUSED),
                                 ("resume", decision_pb.CAMPAIGN_STATUS_ACTIVE)):
            page = await http.get(f"/campaigns/{cid}")
            done = await http.post(f"/campaigns/{cid}/status", data={"csrf": csrf_of(page.text), "action": action})
            assert done.status_code == 303 and await status() == expected
        # Edit the title through the edit form: a new version, and the diff names the field.
        edit = await http.get(f"/campaigns/{cid}/edit")
        fields = dict(re.findall(r'<input id="f-\w+" name="(\w+)"[^>]*value="([^"]*)"', edit.text))
        rest = html.unescape(re.search(r'<textarea id="f-rest"[^>]*>(.*?)</textarea>', edit.text, re.S).group(1))
        version = re.search(r'name="version" value="(\d+)"', edit.text).group(1)
        saved = await http.post(f"/campaigns/{cid}/edit", data={
            "csrf": csrf_of(edit.text), "version": version, **fields, "status": "CAMPAIGN_STATUS_ACTIVE",
            "delivery_mode": "DELIVERY_MODE_ON_REQUEST", "rest": rest.replace("Something new", "Spring prices")})
        assert saved.status_code == 303
        diff = text_of((await http.get(f"/campaigns/{cid}/versions")).text)
        assert ("spec.variants[0].contents[0].content.body 'Something new is waiting for you.' "
                "'Spring prices is waiting for you.'") in diff
        page = await http.get(f"/campaigns/{cid}")
        await http.post(f"/campaigns/{cid}/status", data={"csrf": csrf_of(page.text), "action": "archive"})
        assert await status() == decision_pb.CAMPAIGN_STATUS_ARCHIVED
        # A stale edit (the version read before) is refused, not saved over the newer one.
        stale = await http.post(f"/campaigns/{cid}/edit", data={
            "csrf": csrf_of(edit.text), "version": version, **fields, "status": "CAMPAIGN_STATUS_ACTIVE",
            "delivery_mode": "DELIVERY_MODE_ON_REQUEST", "rest": rest})
        assert "Someone saved this campaign since you opened it" in text_of(stale.text)


def grpc_web(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


async def test_a_preview_is_what_the_web_sdk_fetches_and_a_test_send_reaches_the_user(console, app, api):
    async with console.signed_in(app.keys["admin"]) as http:
        cid = await create_through_form(http)
        page = await http.get(f"/campaigns/{cid}/preview", params={"attributes": '{"first_name": "Ada"}'})
        frame = re.search(r'<iframe src="(/preview/[^"]+)" title="Variant A, locale en', page.text).group(1)
        drawn = await http.get(frame)
        assert drawn.status_code == 200 and 'type="module" src="/static/preview-frame.js"' in drawn.text
        # The frame's SDK asks for "its messages" over gRPC-Web and gets the rendered preview.
        answer = await http.post(f"{frame}/rpc/nudge.delivery.v1.DeliveryService/FetchMessages",
                                 content=grpc_web(delivery_pb.FetchMessagesRequest(user_id="x").SerializeToString()),
                                 headers={"content-type": CONTENT_TYPE})
        assert answer.headers["content-type"] == CONTENT_TYPE
        body = answer.content
        size = int.from_bytes(body[1:5], "big")
        fetched = delivery_pb.FetchMessagesResponse.FromString(body[5:5 + size])
        assert [(m.content.title, m.test) for m in fetched.messages] == [("Hello Ada", True)]
        assert b"grpc-status:0" in body[5 + size:]
        # Without the session (another browser), the frame's calls get nothing.
        async with console.client() as stranger:
            denied = await stranger.post(f"{frame}/rpc/nudge.delivery.v1.DeliveryService/FetchMessages",
                                         content=grpc_web(b""), headers={"content-type": CONTENT_TYPE})
            assert b"grpc-status:16" in denied.content and b"Hello" not in denied.content

        # A bad sample is shown at its field.
        bad = await http.get(f"/campaigns/{cid}/preview", params={"attributes": "{first_name: Ada}"})
        assert re.search(r'<p class="error" id="err-attributes">not JSON', bad.text)

        sent = await http.post(f"/campaigns/{cid}/test", data={"csrf": csrf_of(page.text), "test_user": "tester-1",
                                                               "test_variant": "A", "test_locale": ""})
        notice = re.search(r'id="test-sent">Test message <code>(test_[^<]+)</code> sent to tester-1', sent.text)
        assert notice, text_of(sent.text)
        messages = await fetch_messages(api, app, "tester-1")
        assert [(m.message_id, m.test) for m in messages] == [(notice.group(1), True)]
        missing = await http.post(f"/campaigns/{cid}/test", data={"csrf": csrf_of(page.text), "test_user": ""})
        assert '<p class="error" id="err-test_user">is required' in missing.text


async def test_results_show_each_variants_counts_and_the_charts_follow_them(console, app, api):
    async with console.signed_in(app.keys["admin"]) as http:
        cid = await create_through_form(http)
        before = await http.get(f"/campaigns/{cid}/results")
        assert before.status_code == 200
        assert before.text.count('<svg role="img"') == 2  # the funnel and the daily series
        assert "A 0 0 0 0 0 0 0.0% 0.0% 0.0% — 0 0 0" in text_of(before.text)
        [message] = await fetch_messages(api, app, "buyer-1")
        await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
            message_id=message.message_id, user_id="buyer-1", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
            metadata=app.auth("client"))

        async def counted() -> str:
            page = text_of((await http.get(f"/campaigns/{cid}/results")).text)
            return page if "A 1 1 1 0 0 0 100.0%" in page else ""

        shown = await eventually(counted)
        assert "Per variant" in shown
        after = (await http.get(f"/campaigns/{cid}/results")).text
        funnel = lambda page: re.search(r'<figure id="funnel-chart">.*?</figure>', page, re.S).group(0)  # noqa: E731
        assert funnel(after) != funnel(before.text)  # bars where there were none
        listed = text_of((await http.get("/campaigns")).text)
        assert "Spring sale active now → no end 5 1 1 0" in listed


async def test_segments_users_and_settings_pages_work_through_the_services(console, app, api):
    await api.ingestion.TrackEvents(track([event("s-1", "shopper-1", "app_open"), event("s-2", "shopper-1", "app_open"),
                                           event("s-3", "shopper-1", "app_open")]), metadata=app.auth("events"))
    await api.ingestion.Identify(ingestion_pb.IdentifyRequest(
        user_id="shopper-1", time_zone="Europe/Paris",
        attributes={"plan": common_pb2.AttributeValue(string_value="pro")}), metadata=app.auth("events"))

    async def profiled():
        try:
            got = await api.segmentation.GetUserProfile(segmentation_pb.GetUserProfileRequest(user_id="shopper-1"),
                                                        metadata=app.auth("admin"))
        except grpc.aio.AioRpcError:
            return None
        return got.profile.time_zone == "Europe/Paris" or None

    await eventually(profiled)
    async with console.signed_in(app.keys["admin"]) as http:
        page = await http.get("/segments/new")
        rule = "event:\n  name: app_open\n  operator: EVENT_OPERATOR_AT_LEAST\n  count: 3\n  window: 604800s\n"
        estimate = await http.post("/segments/estimate", data={"csrf": csrf_of(page.text), "rule": rule},
                                   headers={"hx-request": "true"})
        assert "1 of 1 users (100.0%) match this rule now." in text_of(estimate.text)
        broken = await http.post("/segments/estimate", data={"csrf": csrf_of(page.text),
                                                             "rule": rule.replace("count: 3", "count: -1")})
        assert "line 4: spec.rule.event.count: -1 is less than the minimum of 0" in text_of(broken.text)
        saved = await http.post("/segments/new", data={"csrf": csrf_of(page.text), "name": "Engaged",
                                                       "key": "engaged", "description": "", "rule": rule})
        assert saved.status_code == 303
        segment = text_of((await http.get(saved.headers["location"])).text)
        assert "1 of 1 users (100.0%) are in this segment now." in segment and "shopper-1" in segment

        user = text_of((await http.get("/users", params={"user": "shopper-1"})).text)
        assert "Time zone Europe/Paris" in user and 'plan "pro"' in user and "Engaged (engaged)" in user

        settings = await http.get("/settings")
        bad = await http.post("/settings", data={"csrf": csrf_of(settings.text), "default_time_zone": "Europe",
                                                 "default_locale": "", "rest": ""})
        assert re.search(r'<p class="error" id="err-default_time_zone">[^<]+</p>', bad.text)
        good = await http.post("/settings", data={"csrf": csrf_of(settings.text), "default_time_zone": "Asia/Tokyo",
                                                  "default_locale": "en",
                                                  "rest": "cap_rules:\n  - id: daily\n    max_messages: 3\n"
                                                          "    calendar_days: 1\n"})
        assert good.status_code == 303
        got = (await api.decision.GetAppSettings(decision_pb.GetAppSettingsRequest(),
                                                 metadata=app.auth("admin"))).settings
        assert (got.default_time_zone, [(r.id, r.max_messages) for r in got.cap_rules]) == ("Asia/Tokyo", [("daily", 3)])

        confirm = await http.post("/users/delete", data={"csrf": csrf_of(settings.text), "user": "shopper-1",
                                                         "confirm": "someone-else"})
        assert "Type the user id again to confirm" in text_of(confirm.text)
        erased = await http.post("/users/delete", data={"csrf": csrf_of(settings.text), "user": "shopper-1",
                                                        "confirm": "shopper-1"})
        assert "shopper-1 was erased" in text_of(erased.text)
        await expect_error(api.segmentation.GetUserProfile(segmentation_pb.GetUserProfileRequest(user_id="shopper-1"),
                                                           metadata=app.auth("admin")), grpc.StatusCode.NOT_FOUND)


async def test_signing_keys_are_added_and_revoked_on_the_settings_page(console, app):
    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    async with console.signed_in(app.keys["admin"]) as http:
        page = await http.get("/settings")
        assert "No signing keys." in text_of(page.text)
        added = await http.post("/settings/signing-keys", data={"csrf": csrf_of(page.text), "public_key": public,
                                                               "key_id": "web-2026"})
        assert added.status_code == 303
        listed = text_of((await http.get("/settings")).text)
        assert re.search(r"web-2026 ES256 \S+ \S+ UTC no Revoke", listed), listed
        refused = await http.post("/settings/signing-keys", data={"csrf": csrf_of(page.text),
                                                                 "public_key": "not a key", "key_id": ""})
        assert re.search(r'<p class="error" id="err-public_key">[^<]+</p>', refused.text)
        await http.post("/settings/signing-keys/revoke", data={"csrf": csrf_of(page.text), "key_id": "web-2026"})
        assert re.search(r"web-2026 ES256 \S+ \S+ UTC \S+ \S+ UTC", text_of((await http.get("/settings")).text))
