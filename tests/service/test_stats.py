"""Statistics that add up: every send of a campaign is counted once, as delivered, waiting,
expired or dropped under one reason — whether it ended at the pull or in decision's release
path, and for control users too; a campaign without traffic has a zero row per variant and
control; another app's campaign, or an unknown one, is NOT_FOUND. Survey answers, free text
included, are read back page by page."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import grpc
from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudgetools import demo
from services.decision.variants import CONTROL, assign_variant
from services.delivery.stats import DROP_REASONS
from tests.conftest import eventually
from tests.helpers import (Clients, create_app, create_campaign, event, expect_error, fetch_messages,
    make_campaign, track)


async def stats(api: Clients, app, campaign_id: str) -> dict[str, pb.VariantStats]:
    reply = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=campaign_id),
                                                metadata=app.auth("admin"))
    return {("control" if v.control else v.variant_id): v for v in reply.variants}


def adds_up(v: pb.VariantStats) -> bool:
    return (v.sent == v.delivered + v.expired + v.dropped + v.waiting
            and v.dropped == sum(v.dropped_by_reason.values())
            and set(v.dropped_by_reason) == set(DROP_REASONS))


async def test_a_campaign_without_traffic_has_zero_rows_and_unknown_or_foreign_ids_are_not_found(
        stack, database_url):
    app, other = await create_app(database_url), await create_app(database_url)
    api = Clients(stack.channel)
    c = demo.welcome_campaign("unused")
    c.audience.ClearField("include_segment_ids")
    b = c.variants.add()
    b.CopyFrom(c.variants[0])
    b.id = "B"
    c.control_weight = 1
    campaign = await create_campaign(api, app, c)
    reply = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=campaign.id),
                                                metadata=app.auth("admin"))
    assert [(v.variant_id, v.control) for v in reply.variants] == [("A", False), ("B", False), ("", True)]
    assert all(v.sent == v.delivered == v.dropped == v.expired == v.waiting == 0 and adds_up(v)
               for v in reply.variants)
    for who, campaign_id in ((other, campaign.id), (app, "cmp_unknown")):
        await expect_error(api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=campaign_id),
                                                         metadata=who.auth("admin")), grpc.StatusCode.NOT_FOUND)
        await expect_error(api.delivery.ListSurveyAnswers(pb.ListSurveyAnswersRequest(campaign_id=campaign_id),
                                                          metadata=who.auth("admin")), grpc.StatusCode.NOT_FOUND)


async def test_every_send_is_counted_once_where_it_ended(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    events = app.auth("events")

    # Dropped in decision's release path, before delivery ever had it: the window is closed
    # now and the campaign drops rather than defers. A variant user and a control user.
    now = datetime.now(timezone.utc)
    opens = ((now.hour + 12) % 24) * 60
    w = make_campaign("Closed window", "closed")
    w.send_window.CopyFrom(decision_pb.SendWindow(start_minute=opens, end_minute=opens + 30, drop_outside_window=True))
    w.control_weight = 1
    w = await create_campaign(api, app, w)
    users = [f"w-{i}" for i in range(40)]
    in_a = next(u for u in users if assign_variant(w, u) == "A")
    in_control = next(u for u in users if assign_variant(w, u) == CONTROL)

    # Ended at the pull: one delivered, one dropped after the campaign was paused, one left waiting.
    p = await create_campaign(api, app, make_campaign("Paused later", "paused"))
    # A template that fails for this user's event.
    r = make_campaign("Broken for some", "played")
    r.variants[0].contents[0].content.body = "{% for i in (1..event.rounds) %}*{% endfor %}"
    r = await create_campaign(api, app, r)
    # Expires before anyone asks.
    e = make_campaign("Short-lived", "flash")
    e.message_ttl.CopyFrom(duration_pb2.Duration(seconds=1))
    e = await create_campaign(api, app, e)

    await api.ingestion.TrackEvents(track(
        [event(f"c-{u}", u, "closed") for u in (in_a, in_control)]
        + [event(f"p-{u}", u, "paused") for u in ("taker", "late", "away")]
        + [event("r-1", "player", "played", rounds=100000), event("e-1", "gone", "flash")]), metadata=events)

    async def settled():
        got = await stats(api, app, p.id), await stats(api, app, w.id)
        return got[0]["A"].waiting == 3 and got[1]["A"].dropped == 1 and got[1]["control"].dropped == 1 and got

    paused, window = await eventually(settled)
    assert [m.campaign_id for m in await fetch_messages(api, app, "taker", limit=5)] == [p.id]
    await api.decision.SetCampaignStatus(decision_pb.SetCampaignStatusRequest(
        campaign_id=p.id, status=decision_pb.CAMPAIGN_STATUS_PAUSED), metadata=app.auth("admin"))

    async def dropped_at_the_pull():
        return await fetch_messages(api, app, "late", limit=5) == [] and (await stats(api, app, p.id))["A"].dropped == 1

    await eventually(dropped_at_the_pull)
    assert await fetch_messages(api, app, "player", limit=5) == []
    await asyncio.sleep(1.2)  # the short-lived one expires

    window = await stats(api, app, w.id)
    for arm in ("A", "control"):
        v = window[arm]
        assert (v.sent, v.delivered, v.dropped, v.dropped_by_reason["OUTSIDE_WINDOW"]) == (1, 0, 1, 1) and adds_up(v)
    paused = (await stats(api, app, p.id))["A"]
    assert (paused.sent, paused.delivered, paused.dropped, paused.waiting) == (3, 1, 1, 1) and adds_up(paused)
    assert paused.dropped_by_reason["CAMPAIGN_NOT_RUNNING"] == 1
    assert paused.delivery_rate == 1 / 3
    broken = (await stats(api, app, r.id))["A"]
    assert (broken.sent, broken.dropped, broken.dropped_by_reason["RENDER_FAILED"]) == (1, 1, 1) and adds_up(broken)
    expired = (await stats(api, app, e.id))["A"]
    assert (expired.sent, expired.expired, expired.waiting, expired.delivered) == (1, 1, 0, 0) and adds_up(expired)


def survey() -> decision_pb.Campaign:
    c = demo.welcome_campaign("unused")
    c.name = "How are we doing?"
    c.audience.ClearField("include_segment_ids")
    content = c.variants[0].contents[0].content
    content.Clear()
    content.layout = common_pb2.LAYOUT_SURVEY
    content.title = "Two questions"
    content.questions.add(id="colour", text="Favourite colour?", type=common_pb2.QUESTION_TYPE_SINGLE_CHOICE,
                          choices=["red", "blue"])
    content.questions.add(id="why", text="Why?", type=common_pb2.QUESTION_TYPE_FREE_TEXT)
    b = c.variants.add()
    b.CopyFrom(c.variants[0])
    b.id = "B"
    return c


async def test_survey_answers_are_read_back_page_by_page_with_their_free_text(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, survey())
    users = [f"fan-{i}" for i in range(5)]
    for i, u in enumerate(users):
        (message,) = await fetch_messages(api, app, u, limit=5)
        answered = datetime(2026, 1, 1, 12, i, tzinfo=timezone.utc)
        await api.delivery.ReportInteraction(pb.ReportInteractionRequest(
            message_id=message.message_id, user_id=u, type=pb.INTERACTION_TYPE_SURVEY_ANSWER,
            answers=[pb.SurveyAnswer(question_id="colour", choices=["blue"]),
                     pb.SurveyAnswer(question_id="why", text=f"because {u}")],
            occurred_time=answered), metadata=app.auth("client"))

    admin = app.auth("admin")
    seen, token, pages = [], "", 0
    while True:
        reply = await api.delivery.ListSurveyAnswers(pb.ListSurveyAnswersRequest(
            campaign_id=campaign.id, page_size=3, page_token=token), metadata=admin)
        assert len(reply.answers) <= 3
        seen.extend(reply.answers)
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert pages == 4  # ten answers, three a page
    assert [(a.user_id, a.question_id) for a in seen] == [(u, q) for u in users for q in ("colour", "why")]
    assert [a.text for a in seen if a.question_id == "why"] == [f"because {u}" for u in users]
    assert all(list(a.choices) == ["blue"] for a in seen if a.question_id == "colour")
    assert seen[0].answer_time.ToDatetime(timezone.utc) == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    arms = {u: assign_variant(campaign, u) for u in users}
    assert all(a.variant_id == arms[a.user_id] for a in seen)

    # One variant, and a time range: [12:01, 12:03).
    only_b = await api.delivery.ListSurveyAnswers(pb.ListSurveyAnswersRequest(
        campaign_id=campaign.id, variant_id="B", page_size=100), metadata=admin)
    assert {a.user_id for a in only_b.answers} == {u for u in users if arms[u] == "B"}
    ranged = await api.delivery.ListSurveyAnswers(pb.ListSurveyAnswersRequest(
        campaign_id=campaign.id, start_time=datetime(2026, 1, 1, 12, 1, tzinfo=timezone.utc),
        end_time=datetime(2026, 1, 1, 12, 3, tzinfo=timezone.utc)), metadata=admin)
    assert [a.user_id for a in ranged.answers] == [users[1], users[1], users[2], users[2]]

    await expect_error(api.delivery.ListSurveyAnswers(pb.ListSurveyAnswersRequest(
        campaign_id=campaign.id, page_token="not-a-token"), metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)
    await expect_error(api.delivery.ListSurveyAnswers(pb.ListSurveyAnswersRequest(
        campaign_id=campaign.id), metadata=app.auth("client")), grpc.StatusCode.PERMISSION_DENIED)


async def test_triggered_sends_of_control_users_are_exposures_and_their_arm_sticks(stack, database_url):
    """Released for the control group: nothing is shown, the exposure is counted, and the arm
    is kept, so a later weight change does not move the user into a variant."""
    app = await create_app(database_url)
    api = Clients(stack.channel)
    c = make_campaign("Held out", "visited")
    c.control_weight = 1
    c = await create_campaign(api, app, c)
    held_out = [u for u in (f"v-{i}" for i in range(60)) if assign_variant(c, u) == CONTROL][:3]
    await api.ingestion.TrackEvents(track([event(f"v-{u}", u, "visited") for u in held_out]),
                                    metadata=app.auth("events"))

    async def exposed():
        control = (await stats(api, app, c.id))["control"]
        return control.sent == len(held_out) and control

    control = await eventually(exposed)
    assert control.delivered == len(held_out) and adds_up(control)
    # No control group any more: the users already held out stay held out.
    c.control_weight = 0
    await api.decision.UpdateCampaign(decision_pb.UpdateCampaignRequest(campaign=c, expected_version=c.version),
                                      metadata=app.auth("admin"))
    await api.ingestion.TrackEvents(track([event(f"v2-{u}", u, "visited") for u in held_out]),
                                    metadata=app.auth("events"))

    async def settled_as_control(user: str):
        listed = await api.decision.ListPendingSends(decision_pb.ListPendingSendsRequest(user_id=user),
                                                     metadata=app.auth("admin"))
        states = [p.state for p in listed.pending_sends]
        return len(states) == 2 and all(s == decision_pb.PENDING_SEND_STATE_CONTROL for s in states)

    for u in held_out:
        await eventually(lambda u=u: settled_as_control(u))
        assert await fetch_messages(api, app, u, limit=5) == []
    # Control counts a user's first exposure (README, statistics).
    assert (await stats(api, app, c.id))["control"].sent == len(held_out)
