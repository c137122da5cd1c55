"""SendTestMessage: one user gets the message now — by pull or on an open stream — marked as
a test, whatever the campaign's status, audience, window and the user's caps; it moves no cap
(the user's next real message still fits a 1-per-day cap), no statistic (GetCampaignStats
unchanged, interactions included; survey answers never listed), and its interactions trigger
nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import grpc
from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from tests.conftest import eventually
from tests.helpers import (Clients, Stream, create_app, create_campaign, expect_error, fetch_messages, make_campaign,
    violated_fields)


def closed_now() -> pb.SendWindow:
    opens = ((datetime.now(timezone.utc).hour + 12) % 24) * 60
    return pb.SendWindow(start_minute=opens, end_minute=opens + 30)


def untouchable() -> pb.Campaign:
    """A campaign no rule lets reach anyone now: a draft, for iOS only, its window closed."""
    c = make_campaign("Draft for testers", status=pb.CAMPAIGN_STATUS_DRAFT, send_window=closed_now())
    c.audience.platforms.append(common_pb2.PLATFORM_IOS)
    c.variants[0].contents[0].content.title = "Hi {{ user.id }}, {{ event.coupon | default: 'no coupon' }}"
    return c


async def stats(api, app, campaign_id: str) -> list[delivery_pb.VariantStats]:
    return list((await api.delivery.GetCampaignStats(delivery_pb.GetCampaignStatsRequest(campaign_id=campaign_id),
                                                     metadata=app.auth("admin"))).variants)


async def send_test(api, app, **fields) -> pb.SendTestMessageResponse:
    return await api.decision.SendTestMessage(pb.SendTestMessageRequest(**fields), metadata=app.auth("admin"))


async def report(api, app, user: str, message_id: str, kind, button: str = "") -> bool:
    return (await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message_id, user_id=user, type=kind, button_id=button), metadata=app.auth("client"))).recorded


async def test_a_test_send_reaches_one_user_and_moves_no_cap_and_no_statistic(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    await api.decision.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=pb.AppSettings(
        cap_rules=[pb.CapRule(id="1-per-day", max_messages=1, calendar_days=1)])), metadata=admin)
    first = await create_campaign(api, app, make_campaign("First", priority=20))
    second = await create_campaign(api, app, make_campaign("Second", priority=10))
    draft = await create_campaign(api, app, untouchable())
    # Follows clicks on any message: a test message's click must not start it.
    follow = await create_campaign(api, app, make_campaign("Follow-up", "message_clicked"))
    before = await stats(api, app, draft.id)

    coupon = struct_pb2.Struct()
    coupon.update({"coupon": "SAVE10"})
    sent = await send_test(api, app, campaign_id=draft.id, user_id="tess", event_properties=coupon)
    assert sent.message_id.startswith("test_") and sent.content.title == "Hi tess, SAVE10"

    # Her first pull hands it out, marked, ahead of any real message.
    (got,) = await fetch_messages(api, app, "tess", limit=1)
    assert (got.message_id, got.campaign_id, got.test, got.content.title) == (
        sent.message_id, draft.id, True, "Hi tess, SAVE10")
    # The cap (1 a day) still has room for her first real message, and only for that.
    real = await fetch_messages(api, app, "tess", limit=5)
    assert [(m.campaign_id, m.test) for m in real] == [(first.id, False)]
    explained = await api.decision.ExplainDecision(pb.ExplainDecisionRequest(user_id="tess"), metadata=admin)
    verdicts = {e.campaign_id: (e.verdict, e.reason) for e in explained.campaigns}
    assert verdicts[second.id] == (pb.VERDICT_EXCLUDED, "CAPPED")

    # Interactions with the test message are accepted, and counted nowhere.
    assert await report(api, app, "tess", got.message_id, delivery_pb.INTERACTION_TYPE_IMPRESSION)
    assert await report(api, app, "tess", got.message_id, delivery_pb.INTERACTION_TYPE_CLICK, "tour")
    assert await report(api, app, "tess", real[0].message_id, delivery_pb.INTERACTION_TYPE_CLICK, "tour")

    # The real click starts the follow-up; the test click, before it in her order, did not.
    async def follow_ups():
        sends = (await api.decision.ListPendingSends(pb.ListPendingSendsRequest(user_id="tess"),
                                                     metadata=admin)).pending_sends
        return [s for s in sends if s.campaign_id == follow.id]

    assert len(await eventually(follow_ups)) == 1
    await asyncio.sleep(0.3)
    assert len(await follow_ups()) == 1
    after = await stats(api, app, draft.id)
    assert after == before and all(v.sent == v.impressions == 0 and not v.clicks_by_button for v in after)
    (counted,) = await stats(api, app, first.id)
    assert (counted.sent, counted.delivered, dict(counted.clicks_by_button)) == (1, 1, {"tour": 1})
    # Only tess had it: another user gets the real message.
    assert [(m.campaign_id, m.test) for m in await fetch_messages(api, app, "someone-else", limit=5)] == [
        (first.id, False)]


async def test_a_test_send_reaches_an_open_stream_now(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    draft = await create_campaign(api, app, untouchable())
    stream = Stream(api, app, "streamer")
    try:
        await asyncio.sleep(0.2)  # the stream is open
        sent = await send_test(api, app, campaign_id=draft.id, user_id="streamer", locale="en")
        await eventually(lambda: asyncio.sleep(0, stream.messages))
        (pushed,) = stream.messages
        assert (pushed.message_id, pushed.test, pushed.content.title) == (
            sent.message_id, True, "Hi streamer, no coupon")
    finally:
        await stream.close()
    assert await fetch_messages(api, app, "streamer", limit=5) == []  # handed out once


async def test_bad_test_sends_send_nothing(stack, database_url):
    app, other = await create_app(database_url), await create_app(database_url)
    api = Clients(stack.channel)
    c = untouchable()
    c.variants[0].contents[0].content.body = "{% for i in (1..event.rounds) %}*{% endfor %}"
    draft = await create_campaign(api, app, c)
    exc = await expect_error(send_test(api, app, campaign_id=draft.id), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"user_id"}
    exc = await expect_error(send_test(api, app, campaign_id=draft.id, user_id="u", variant_id="Z"),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"variant_id"}
    await expect_error(send_test(api, other, campaign_id=draft.id, user_id="u"), grpc.StatusCode.NOT_FOUND)
    many = struct_pb2.Struct()
    many.update({"rounds": 100000})
    exc = await expect_error(send_test(api, app, campaign_id=draft.id, user_id="u", event_properties=many),
                             grpc.StatusCode.FAILED_PRECONDITION)
    assert "body" in exc.details()
    assert await fetch_messages(api, app, "u", limit=5) == []


async def test_a_retried_test_send_with_a_request_id_sends_once(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    draft = await create_campaign(api, app, untouchable())
    first = await send_test(api, app, campaign_id=draft.id, user_id="retry", request_id="send-1")
    again = await send_test(api, app, campaign_id=draft.id, user_id="retry", request_id="send-1")
    assert again == first
    assert [m.message_id for m in await fetch_messages(api, app, "retry", limit=5)] == [first.message_id]
    exc = await expect_error(send_test(api, app, campaign_id=draft.id, user_id="other", request_id="send-1"),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"request_id"}


async def test_a_test_surveys_answers_are_recorded_but_never_listed(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    c = untouchable()
    content = c.variants[0].contents[0].content
    content.layout = common_pb2.LAYOUT_SURVEY
    content.questions.add(id="nps", text="How likely?", type=common_pb2.QUESTION_TYPE_RATING, max_rating=10)
    survey = await create_campaign(api, app, c)
    await send_test(api, app, campaign_id=survey.id, user_id="rater")
    (got,) = await fetch_messages(api, app, "rater")
    assert got.test and got.content.questions[0].id == "nps"
    answered = await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=got.message_id, user_id="rater", type=delivery_pb.INTERACTION_TYPE_SURVEY_ANSWER,
        answers=[delivery_pb.SurveyAnswer(question_id="nps", rating=9)]), metadata=app.auth("client"))
    assert answered.recorded
    listed = await api.delivery.ListSurveyAnswers(delivery_pb.ListSurveyAnswersRequest(campaign_id=survey.id),
                                                  metadata=app.auth("admin"))
    assert list(listed.answers) == []
    assert all(not v.survey_answers for v in await stats(api, app, survey.id))
