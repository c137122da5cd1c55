"""Campaign semantics a user sees: an on-request campaign is shown once per user unless it
asks for repeats; a trigger fires only while its campaign runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncio

import grpc
import pytest
from google.protobuf import duration_pb2

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from nudgelib.clock import FixedClock
from nudgelib.protoconv import to_timestamp
from services.decision.server import SPEC as DECISION
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import create_app, event
from tests.service.test_decision import banner, fake_delivery  # noqa: F401 - a fixture

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)


async def pulls(internal, app_id: str, user_id: str, times: int) -> list[int]:
    """How many messages each of `times` pulls hands out."""
    out = []
    for _ in range(times):
        got = await internal.Decide(internal_pb.DecideRequest(app_id=app_id, user_id=user_id), metadata=INTERNAL)
        out.append(len(got.decisions))
    return out


@pytest.fixture
async def decision_at(stack, database_url):
    """A decision replica on a clock the test moves, and its stubs."""
    clock = FixedClock(datetime.now(timezone.utc))
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation")}, clock=clock)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    yield clock, pb_grpc.DecisionServiceStub(channel), internal_grpc.DecisionInternalServiceStub(channel)
    await channel.close()
    await host.stop()


async def test_an_on_request_campaign_is_shown_once_per_user_by_default(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("Once")), metadata=app.auth("admin"))

    assert await pulls(internal, app.id, "u1", 3) == [1, 0, 0]
    # Each user once.
    assert await pulls(internal, app.id, "u2", 2) == [1, 0]
    explained = await admin.ExplainDecision(pb.ExplainDecisionRequest(user_id="u1"), metadata=app.auth("admin"))
    assert [(c.reason, c.detail) for c in explained.campaigns] == [("CAPPED", "capped by lifetime")]


async def test_a_lifetime_max_above_one_allows_that_many(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    await admin.CreateCampaign(pb.CreateCampaignRequest(
        campaign=banner("Thrice", caps=pb.CampaignCaps(lifetime_max=3))), metadata=app.auth("admin"))

    assert await pulls(internal, app.id, "u", 4) == [1, 1, 1, 0]


async def test_a_reeligibility_interval_shows_it_again_once_the_interval_passed(decision_at, database_url):
    clock, admin, internal = decision_at
    app = await create_app(database_url)
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner(
        "Daily", caps=pb.CampaignCaps(reeligibility_interval=duration_pb2.Duration(seconds=86400)))),
        metadata=app.auth("admin"))

    assert await pulls(internal, app.id, "u", 2) == [1, 0]
    clock.advance(timedelta(days=1, seconds=1))
    assert await pulls(internal, app.id, "u", 2) == [1, 0]


def opened(user: str, happened: datetime):
    """The user opened the app at `happened`."""
    e = event(f"open-{user}", user, "app_open")
    e.occurred_time.CopyFrom(to_timestamp(happened))
    return e


async def test_a_trigger_fires_only_for_events_that_happen_within_the_schedule(stack, database_url, fake_delivery):
    recorder, delivery_target = fake_delivery
    # Hours ahead of the real clock: the stack's own decision (same database) never sees these due.
    t0 = datetime.now(timezone.utc) + timedelta(hours=10)
    clock = FixedClock(t0)
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    app = await create_app(database_url)
    recorder.only(app)
    launch = banner("Launch", delivery_mode=pb.DELIVERY_MODE_TRIGGERED, status=pb.CAMPAIGN_STATUS_ACTIVE,
                    start_time=to_timestamp(t0 + timedelta(hours=1)), end_time=to_timestamp(t0 + timedelta(hours=3)))
    launch.triggers.add(event_name="app_open")

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            admin, internal = pb_grpc.DecisionServiceStub(ch), internal_grpc.DecisionInternalServiceStub(ch)
            await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=launch), metadata=app.auth("admin"))

            async def apply(*events):
                await internal.ApplyEvents(internal_pb.ApplyEventsRequest(app_id=app.id, events=events),
                                           metadata=INTERNAL)

            # Before the launch: nothing is started, so nothing arrives at the launch.
            await apply(opened("before-launch", t0))
            clock.set(t0 + timedelta(hours=2))
            await apply(opened("during", clock.now()),
                        # Sent in late, but it happened during the campaign: it counts.
                        opened("late-but-during", t0 + timedelta(hours=1, minutes=30)),
                        # Sent in after the launch, but it happened before: it does not.
                        opened("late-from-before", t0 + timedelta(minutes=50)))
            # Released before the clock passes the end: judged after it, they would rightly be
            # dropped as ended (the releaser reads the clock when it gets to them, later on a
            # loaded machine).
            await eventually(lambda: asyncio.sleep(0, len(recorder.received) >= 2), timeout=10)
            clock.set(t0 + timedelta(hours=3, minutes=1))
            await apply(opened("after-end", clock.now()))
            # Nothing was started for the others (the sends above are written before
            # ApplyEvents answers), so nothing else can come.
            for user in ("before-launch", "late-from-before", "after-end"):
                listed = await admin.ListPendingSends(pb.ListPendingSendsRequest(user_id=user),
                                                      metadata=app.auth("admin"))
                assert list(listed.pending_sends) == [], user
    finally:
        await host.stop()
    assert sorted(user for user, _ in recorder.received) == ["during", "late-but-during"]


async def test_a_segment_entry_fires_only_within_the_schedule(stack, database_url, fake_delivery):
    recorder, delivery_target = fake_delivery
    t0 = datetime.now(timezone.utc) + timedelta(hours=10)
    clock = FixedClock(t0)
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    app = await create_app(database_url)
    recorder.only(app)
    vip = (await seg_grpc.SegmentationServiceStub(stack.channel("segmentation")).CreateSegment(
        seg_pb.CreateSegmentRequest(name="vip", rule=seg_pb.Rule(platform=seg_pb.PlatformCondition(platforms=[1]))),
        metadata=app.auth("admin"))).segment.id
    welcome = banner("VIP", delivery_mode=pb.DELIVERY_MODE_TRIGGERED, status=pb.CAMPAIGN_STATUS_ACTIVE,
                     start_time=to_timestamp(t0 + timedelta(hours=1)))
    welcome.triggers.add(segment_entered_id=vip)

    def entered(user: str) -> internal_pb.ApplyUserChangesRequest:
        return internal_pb.ApplyUserChangesRequest(app_id=app.id, changes=[internal_pb.UserChange(
            user_id=user, change_id=f"chg-{user}", entered_segment_ids=[vip],
            context=common_pb2.UserContext(user_id=user, segment_ids=[vip]))])

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            admin, internal = pb_grpc.DecisionServiceStub(ch), internal_grpc.DecisionInternalServiceStub(ch)
            await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=welcome), metadata=app.auth("admin"))
            await internal.ApplyUserChanges(entered("early"), metadata=INTERNAL)
            clock.set(t0 + timedelta(hours=2))
            await internal.ApplyUserChanges(entered("on-time"), metadata=INTERNAL)
            await eventually(lambda: asyncio.sleep(0, recorder.received), timeout=10)
            await asyncio.sleep(1.2)
    finally:
        await host.stop()
    assert [user for user, _ in recorder.received] == ["on-time"]


async def test_an_event_from_while_the_campaign_was_a_draft_or_paused_fires_nothing(stack, database_url,
                                                                                   fake_delivery):
    recorder, delivery_target = fake_delivery
    t0 = datetime.now(timezone.utc) + timedelta(hours=10)
    clock = FixedClock(t0)
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    app = await create_app(database_url)
    recorder.only(app)
    launch = banner("Launch", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)  # a draft
    launch.triggers.add(event_name="app_open")

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            admin, internal = pb_grpc.DecisionServiceStub(ch), internal_grpc.DecisionInternalServiceStub(ch)
            auth = app.auth("admin")
            cid = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=launch), metadata=auth)).campaign.id

            async def status(s: int) -> None:
                await admin.SetCampaignStatus(pb.SetCampaignStatusRequest(campaign_id=cid, status=s), metadata=auth)

            async def apply(*events):
                await internal.ApplyEvents(internal_pb.ApplyEventsRequest(app_id=app.id, events=events),
                                           metadata=INTERNAL)

            clock.set(t0 + timedelta(hours=1))
            await status(pb.CAMPAIGN_STATUS_ACTIVE)
            clock.set(t0 + timedelta(hours=2))
            await status(pb.CAMPAIGN_STATUS_PAUSED)
            clock.set(t0 + timedelta(hours=3))
            await status(pb.CAMPAIGN_STATUS_ACTIVE)
            clock.set(t0 + timedelta(hours=4))
            # Each arrives now, after the campaign runs again; only the last happened while it did.
            await apply(opened("while-draft", t0 + timedelta(minutes=30)),
                        opened("while-paused", t0 + timedelta(hours=2, minutes=30)),
                        opened("while-active", t0 + timedelta(hours=3, minutes=30)))
            await eventually(lambda: asyncio.sleep(0, recorder.received), timeout=10)
            await asyncio.sleep(1.2)  # more than two release polls: nothing else comes
    finally:
        await host.stop()
    assert [user for user, _ in recorder.received] == ["while-active"]
