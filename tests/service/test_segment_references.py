"""Campaigns name only the app's own segments, and a segment a campaign uses cannot be
deleted: decision asks segmentation at save time, segmentation asks decision at delete time."""

from __future__ import annotations

import asyncio

import grpc

from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from services.decision.server import SPEC as DECISION
from services.segmentation.server import SPEC as SEGMENTATION
from tests.conftest import start_host
from tests.helpers import App, create_app, expect_error, violated_fields
from tests.service.test_decision import banner

RULE = seg_pb.Rule(platform=seg_pb.PlatformCondition(platforms=[1]))


async def new_segment(stack, app: App, name: str = "s") -> str:
    stub = seg_grpc.SegmentationServiceStub(stack.channel("segmentation"))
    return (await stub.CreateSegment(seg_pb.CreateSegmentRequest(name=name, rule=RULE),
                                     metadata=app.auth("admin"))).segment.id


async def test_a_campaign_naming_an_unknown_or_another_apps_segment_is_refused_naming_the_field(stack, database_url):
    app, other = await create_app(database_url), await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    mine, theirs = await new_segment(stack, app), await new_segment(stack, other)
    campaign = banner("Targeted", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    campaign.audience.include_segment_ids.extend(["seg_nope", mine])
    campaign.audience.exclude_segment_ids.append(theirs)
    campaign.triggers.add(event_name="app_open")
    campaign.triggers.add(segment_entered_id="seg_gone")

    exc = await expect_error(admin.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign),
                                                  metadata=app.auth("admin")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign.audience.include_segment_ids[0]",
                                    "campaign.audience.exclude_segment_ids[0]", "campaign.triggers[1].segment_entered_id"}
    listed = await admin.ListCampaigns(pb.ListCampaignsRequest(), metadata=app.auth("admin"))
    assert list(listed.campaigns) == []

    # The app's own segments are accepted; an update naming a missing one is refused too.
    campaign.audience.ClearField("exclude_segment_ids")
    campaign.audience.include_segment_ids[:] = [mine]
    del campaign.triggers[1]
    saved = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign),
                                        metadata=app.auth("admin"))).campaign
    saved.audience.exclude_segment_ids.append(theirs)
    exc = await expect_error(admin.UpdateCampaign(pb.UpdateCampaignRequest(campaign=saved), metadata=app.auth("admin")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign.audience.exclude_segment_ids[0]"}


async def test_a_segment_a_campaign_uses_cannot_be_deleted(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    segments = seg_grpc.SegmentationServiceStub(stack.channel("segmentation"))
    auth = app.auth("admin")
    audience, entry, free = (await new_segment(stack, app, "audience"), await new_segment(stack, app, "entry"),
                             await new_segment(stack, app, "free"))
    active = banner("Active", status=pb.CAMPAIGN_STATUS_ACTIVE)
    active.audience.exclude_segment_ids.append(audience)
    active = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=active), metadata=auth)).campaign
    draft = banner("Draft", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    draft.triggers.add(segment_entered_id=entry)
    draft.audience.include_segment_ids.append(audience)
    draft = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=draft), metadata=auth)).campaign

    exc = await expect_error(segments.DeleteSegment(seg_pb.DeleteSegmentRequest(segment_id=audience), metadata=auth),
                             grpc.StatusCode.FAILED_PRECONDITION)
    assert active.id in exc.details() and draft.id in exc.details()
    exc = await expect_error(segments.DeleteSegment(seg_pb.DeleteSegmentRequest(segment_id=entry), metadata=auth),
                             grpc.StatusCode.FAILED_PRECONDITION)
    assert draft.id in exc.details() and active.id not in exc.details()
    await segments.DeleteSegment(seg_pb.DeleteSegmentRequest(segment_id=free), metadata=auth)

    # An archived campaign never runs again: it holds nothing back.
    for c in (active, draft):
        await admin.SetCampaignStatus(pb.SetCampaignStatusRequest(campaign_id=c.id, status=pb.CAMPAIGN_STATUS_ARCHIVED),
                                      metadata=auth)
    await segments.DeleteSegment(seg_pb.DeleteSegmentRequest(segment_id=audience), metadata=auth)
    await segments.DeleteSegment(seg_pb.DeleteSegmentRequest(segment_id=entry), metadata=auth)


async def test_while_the_other_service_is_down_the_answer_is_unavailable(stack, database_url):
    app = await create_app(database_url)
    auth = app.auth("admin")
    segment = await new_segment(stack, app)
    # Each on its own, its peer an address nothing listens on.
    decision = await start_host(DECISION, database_url, {"segmentation": "127.0.0.1:9"})
    segmentation = await start_host(SEGMENTATION, database_url, {"decision": "127.0.0.1:9"})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{decision.port}") as d, \
                grpc.aio.insecure_channel(f"127.0.0.1:{segmentation.port}") as s:
            admin, segments = pb_grpc.DecisionServiceStub(d), seg_grpc.SegmentationServiceStub(s)
            targeted = banner("Targeted")
            targeted.audience.include_segment_ids.append(segment)
            create, delete = await asyncio.gather(
                expect_error(admin.CreateCampaign(pb.CreateCampaignRequest(campaign=targeted), metadata=auth),
                             grpc.StatusCode.UNAVAILABLE),
                expect_error(segments.DeleteSegment(seg_pb.DeleteSegmentRequest(segment_id=segment), metadata=auth),
                             grpc.StatusCode.UNAVAILABLE))
            assert "retry" in create.details() and "retry" in delete.details()
            # A campaign that names no segment needs no answer from segmentation.
            await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("Everyone")), metadata=auth)
    finally:
        await decision.stop()
        await segmentation.stop()
    # Nothing was deleted.
    stub = seg_grpc.SegmentationServiceStub(stack.channel("segmentation"))
    assert (await stub.GetSegment(seg_pb.GetSegmentRequest(segment_id=segment), metadata=auth)).segment.id == segment
