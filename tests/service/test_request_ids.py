"""Every mutating operator RPC honours request_id: a retry within the window changes nothing
again and answers as the first call did; the same id for another request is refused; past the
window the id is forgotten."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest

from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from nudgelib.clock import FixedClock
from services.decision.server import SPEC as DECISION
from services.segmentation.server import SPEC as SEGMENTATION
from tests.conftest import start_host
from tests.helpers import create_app, expect_error, violated_fields
from tests.service.test_decision import banner


async def campaign_count(database_url: str, app_id: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM decision.campaigns WHERE app_id = $1", app_id)
    finally:
        await conn.close()


async def test_a_retried_create_makes_one_campaign(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    request = pb.CreateCampaignRequest(campaign=banner("Once"), request_id="create-1")
    first = await admin.CreateCampaign(request, metadata=app.auth("admin"))
    again = await admin.CreateCampaign(request, metadata=app.auth("admin"))
    assert again == first
    # Retries racing each other: still one.
    racing = pb.CreateCampaignRequest(campaign=banner("Raced"), request_id="create-2")
    replies = await asyncio.gather(*(admin.CreateCampaign(racing, metadata=app.auth("admin")) for _ in range(5)))
    assert len({r.campaign.id for r in replies}) == 1
    assert await campaign_count(database_url, app.id) == 2


async def test_update_status_and_settings_apply_once_and_replay_the_first_answer(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    auth = app.auth("admin")
    created = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("C")), metadata=auth)).campaign

    changed = pb.Campaign()
    changed.CopyFrom(created)
    changed.name = "C2"
    update = pb.UpdateCampaignRequest(campaign=changed, request_id="update-1")
    assert (await admin.UpdateCampaign(update, metadata=auth)).campaign.version == 2
    assert (await admin.UpdateCampaign(update, metadata=auth)).campaign.version == 2

    pause = pb.SetCampaignStatusRequest(campaign_id=created.id, status=pb.CAMPAIGN_STATUS_PAUSED, request_id="pause")
    assert (await admin.SetCampaignStatus(pause, metadata=auth)).campaign.status == pb.CAMPAIGN_STATUS_PAUSED
    await admin.SetCampaignStatus(pb.SetCampaignStatusRequest(
        campaign_id=created.id, status=pb.CAMPAIGN_STATUS_ACTIVE, request_id="resume"), metadata=auth)
    # A late retry of the pause answers as it did then and does not pause the campaign again.
    replayed = await admin.SetCampaignStatus(pause, metadata=auth)
    assert (replayed.campaign.status, replayed.campaign.version) == (pb.CAMPAIGN_STATUS_PAUSED, 3)
    now = (await admin.GetCampaign(pb.GetCampaignRequest(campaign_id=created.id), metadata=auth)).campaign
    assert (now.status, now.version) == (pb.CAMPAIGN_STATUS_ACTIVE, 4)

    settings = pb.UpdateAppSettingsRequest(settings=pb.AppSettings(default_time_zone="Europe/Paris"),
                                           request_id="settings-1")
    await admin.UpdateAppSettings(settings, metadata=auth)
    await admin.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=pb.AppSettings(default_time_zone="Asia/Tokyo")),
                                  metadata=auth)
    assert (await admin.UpdateAppSettings(settings, metadata=auth)).settings.default_time_zone == "Europe/Paris"
    kept = (await admin.GetAppSettings(pb.GetAppSettingsRequest(), metadata=auth)).settings
    assert kept.default_time_zone == "Asia/Tokyo"


async def test_the_same_id_for_another_request_is_refused(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    auth = app.auth("admin")
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("A"), request_id="same"), metadata=auth)
    other = admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("B"), request_id="same"), metadata=auth)
    exc = await expect_error(other, grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"request_id"}
    elsewhere = admin.UpdateAppSettings(pb.UpdateAppSettingsRequest(
        settings=pb.AppSettings(default_time_zone="UTC"), request_id="same"), metadata=auth)
    exc = await expect_error(elsewhere, grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"request_id"} and "CreateCampaign" in exc.details()
    too_long = admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("C"), request_id="x" * 129),
                                    metadata=auth)
    assert violated_fields(await expect_error(too_long, grpc.StatusCode.INVALID_ARGUMENT)) == {"request_id"}
    assert await campaign_count(database_url, app.id) == 1
    # Ids are the app's own: another app may use the same one.
    other_app = await create_app(database_url)
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("A"), request_id="same"),
                               metadata=other_app.auth("admin"))
    assert await campaign_count(database_url, other_app.id) == 1


async def test_a_failed_call_is_not_kept(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    missing = pb.SetCampaignStatusRequest(campaign_id="cmp_nope", status=pb.CAMPAIGN_STATUS_ACTIVE, request_id="r")
    await expect_error(admin.SetCampaignStatus(missing, metadata=app.auth("admin")), grpc.StatusCode.NOT_FOUND)
    await expect_error(admin.SetCampaignStatus(missing, metadata=app.auth("admin")), grpc.StatusCode.NOT_FOUND)


@pytest.fixture
async def clocked(stack, database_url):
    """Decision and segmentation replicas on a clock the test moves."""
    clock = FixedClock(datetime.now(timezone.utc))
    peers = {"segmentation": stack.target("segmentation"), "decision": stack.target("decision")}
    hosts = [await start_host(spec, database_url, peers, clock=clock) for spec in (DECISION, SEGMENTATION)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{h.port}") for h in hosts]
    yield clock, pb_grpc.DecisionServiceStub(channels[0]), seg_grpc.SegmentationServiceStub(channels[1])
    for c in channels:
        await c.close()
    for h in hosts:
        await h.stop()


async def test_past_the_window_the_id_is_forgotten_in_both_services(clocked, database_url):
    clock, decision, segmentation = clocked
    app = await create_app(database_url)
    auth = app.auth("admin")
    create = pb.CreateCampaignRequest(campaign=banner("W"), request_id="daily-job")
    rule = seg_pb.Rule(platform=seg_pb.PlatformCondition(platforms=[1]))
    segment = seg_pb.CreateSegmentRequest(name="s", rule=rule, request_id="daily-job")
    first = await decision.CreateCampaign(create, metadata=auth)
    first_segment = await segmentation.CreateSegment(segment, metadata=auth)

    clock.advance(timedelta(hours=23, minutes=59))  # within the 24 h window: replayed
    assert (await decision.CreateCampaign(create, metadata=auth)).campaign.id == first.campaign.id
    assert (await segmentation.CreateSegment(segment, metadata=auth)).segment.id == first_segment.segment.id
    other = seg_pb.CreateSegmentRequest(name="another", rule=rule, request_id="daily-job")
    exc = await expect_error(segmentation.CreateSegment(other, metadata=auth), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"request_id"}

    clock.advance(timedelta(minutes=2))  # past it: a new call
    assert (await decision.CreateCampaign(create, metadata=auth)).campaign.id != first.campaign.id
    assert (await segmentation.CreateSegment(segment, metadata=auth)).segment.id != first_segment.segment.id
    assert await campaign_count(database_url, app.id) == 2
