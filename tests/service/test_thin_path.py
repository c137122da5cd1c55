"""The thin path through all four services, in process: an operator's campaign for users
who signed up reaches exactly those users, and their interactions are recorded."""

from __future__ import annotations

import grpc

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudgetools import demo
from tests.conftest import eventually
from tests.helpers import Clients, event, expect_error, track, violated_fields


async def test_signup_campaign_reaches_only_signed_up_users(stack, app):
    api = Clients(stack.channel)
    segment = (await api.segmentation.CreateSegment(demo.signup_segment(), metadata=app.auth("admin"))).segment
    campaign = (await api.decision.CreateCampaign(
        decision_pb.CreateCampaignRequest(campaign=demo.welcome_campaign(segment.id)),
        metadata=app.auth("admin"))).campaign
    assert campaign.status == decision_pb.CAMPAIGN_STATUS_ACTIVE and campaign.version == 1

    accepted = await api.ingestion.TrackEvents(track([event("e1", "u1", "signup")]), metadata=app.auth("events"))
    assert accepted.accepted_count == 1

    async def fetch(user: str):
        reply = await api.delivery.FetchMessages(
            delivery_pb.FetchMessagesRequest(user_id=user), metadata=app.auth("client"))
        return reply.messages

    messages = await eventually(lambda: fetch("u1"))
    assert len(messages) == 1
    message = messages[0]
    assert message.campaign_id == campaign.id and message.campaign_version == 1
    assert message.content.title == "Welcome to Nudge!"
    assert [b.id for b in message.content.buttons] == ["tour", "later"]
    assert message.message_id.startswith("msg_")

    assert list(await fetch("u2")) == []

    impression = delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="u1", type=delivery_pb.INTERACTION_TYPE_IMPRESSION)
    assert (await api.delivery.ReportInteraction(impression, metadata=app.auth("client"))).recorded
    # A retried report is accepted and not counted again.
    assert not (await api.delivery.ReportInteraction(impression, metadata=app.auth("client"))).recorded
    click = delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="u1", type=delivery_pb.INTERACTION_TYPE_CLICK, button_id="tour")
    assert (await api.delivery.ReportInteraction(click, metadata=app.auth("client"))).recorded

    stats = await api.delivery.GetCampaignStats(
        delivery_pb.GetCampaignStatsRequest(campaign_id=campaign.id), metadata=app.auth("admin"))
    (variant,) = stats.variants
    assert (variant.variant_id, variant.sent, variant.impressions) == ("A", 1, 1)
    assert dict(variant.clicks_by_button) == {"tour": 1}


async def test_interactions_are_checked_against_the_message(stack, app):
    api = Clients(stack.channel)
    segment = (await api.segmentation.CreateSegment(demo.signup_segment(), metadata=app.auth("admin"))).segment
    await api.decision.CreateCampaign(
        decision_pb.CreateCampaignRequest(campaign=demo.welcome_campaign(segment.id)), metadata=app.auth("admin"))
    await api.ingestion.TrackEvents(track([event("s1", "u9", "signup")]), metadata=app.auth("events"))

    async def fetch():
        return (await api.delivery.FetchMessages(
            delivery_pb.FetchMessagesRequest(user_id="u9"), metadata=app.auth("client"))).messages

    (message,) = await eventually(fetch)
    bad_button = delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="u9", type=delivery_pb.INTERACTION_TYPE_CLICK, button_id="nope")
    exc = await expect_error(api.delivery.ReportInteraction(bad_button, metadata=app.auth("client")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"button_id"}
    someone_else = delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="u10", type=delivery_pb.INTERACTION_TYPE_IMPRESSION)
    await expect_error(api.delivery.ReportInteraction(someone_else, metadata=app.auth("client")),
                       grpc.StatusCode.NOT_FOUND)


async def test_paused_campaign_is_not_delivered_and_explain_says_why(stack, app):
    api = Clients(stack.channel)
    segment = (await api.segmentation.CreateSegment(demo.signup_segment(), metadata=app.auth("admin"))).segment
    campaign = (await api.decision.CreateCampaign(
        decision_pb.CreateCampaignRequest(campaign=demo.welcome_campaign(segment.id)),
        metadata=app.auth("admin"))).campaign
    await api.ingestion.TrackEvents(track([event("p1", "u5", "signup")]), metadata=app.auth("events"))

    async def chosen():
        explained = await api.decision.ExplainDecision(
            decision_pb.ExplainDecisionRequest(user_id="u5"), metadata=app.auth("admin"))
        return [c for c in explained.campaigns if c.verdict == decision_pb.VERDICT_CHOSEN]

    assert [c.campaign_id for c in await eventually(chosen)] == [campaign.id]

    paused = await api.decision.SetCampaignStatus(decision_pb.SetCampaignStatusRequest(
        campaign_id=campaign.id, status=decision_pb.CAMPAIGN_STATUS_PAUSED), metadata=app.auth("admin"))
    assert paused.campaign.version == 2
    reply = await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u5"), metadata=app.auth("client"))
    assert list(reply.messages) == []
    explained = await api.decision.ExplainDecision(
        decision_pb.ExplainDecisionRequest(user_id="u5"), metadata=app.auth("admin"))
    (item,) = explained.campaigns
    assert (item.verdict, item.reason) == (decision_pb.VERDICT_EXCLUDED, "NOT_ACTIVE")
    # Version 1 stays readable: messages name the version they came from.
    v1 = await api.decision.GetCampaign(
        decision_pb.GetCampaignRequest(campaign_id=campaign.id, version=1), metadata=app.auth("admin"))
    assert v1.campaign.status == decision_pb.CAMPAIGN_STATUS_ACTIVE


async def test_invalid_campaign_names_the_fields(stack, app):
    api = Clients(stack.channel)
    bad = demo.welcome_campaign("seg_x")
    bad.name = ""
    bad.variants[0].contents[0].content.layout = 0
    exc = await expect_error(
        api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(campaign=bad), metadata=app.auth("admin")),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign.name", "campaign.variants[0].contents[0].content.layout"}
