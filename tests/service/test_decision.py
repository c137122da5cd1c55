"""Decision against real PostgreSQL and segmentation: exact caps across replicas, triggered
sends that survive restarts, exception events, segment-entry triggers, Explain."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as delivery_grpc
from nudgetools import demo
from nudgelib.clock import FixedClock
from nudgelib.protoconv import to_timestamp
from services.decision.server import SPEC as DECISION
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import LogPositions, create_app, event, expect_error, violated_fields

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)


class RecordingDelivery(delivery_grpc.DeliveryInternalServiceServicer):
    """Stands in for delivery's inbox: records what decision releases, and the sends it
    reports as ended; refuses the first `refusals` calls, as a delivery with a bug would."""

    def __init__(self, refusals: int = 0) -> None:
        self.received: list[tuple[str, internal_pb.Decision]] = []
        self.unsent: list[delivery_pb.UnsentMessage] = []
        self.refusals = refusals
        self.apps: set[str] = set()

    def only(self, app) -> None:
        """Records this app's calls alone. A decision started with a clock hours ahead
        releases every app's sends due by then, those earlier tests left too: taken and
        forgotten (refused, they would fail the releaser's whole step and come again with the
        test's own), so nothing of theirs is recorded or refused here."""
        self.apps.add(app.id)

    async def EnqueueMessages(self, request, context):
        if self.apps and request.app_id not in self.apps:
            return delivery_pb.EnqueueMessagesResponse()
        if self.refusals:
            self.refusals -= 1
            await context.abort(grpc.StatusCode.INTERNAL, "a bug in delivery")
        self.received.extend((request.user_id, d) for d in request.decisions)
        self.unsent.extend(request.unsent)
        return delivery_pb.EnqueueMessagesResponse()


@pytest.fixture
async def fake_delivery(request):
    server = grpc.aio.server()
    recorder = RecordingDelivery(getattr(request, "param", 0))
    delivery_grpc.add_DeliveryInternalServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield recorder, f"127.0.0.1:{port}"
    await server.stop(0)


def banner(cid_name: str, priority: int = 1, **kw) -> pb.Campaign:
    c = demo.welcome_campaign("unused")
    c.name, c.priority = cid_name, priority
    c.audience.ClearField("include_segment_ids")
    for k, v in kw.items():
        getattr(c, k).CopyFrom(v) if hasattr(v, "CopyFrom") else setattr(c, k, v)
    return c


def cart_campaign() -> pb.Campaign:
    c = banner("Abandoned cart", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    c.triggers.add(event_name="cart_abandoned", delay=duration_pb2.Duration(seconds=1800),
                   exception_events=[pb.ExceptionEvent(event_name="purchase")])
    return c


def equals(name: str, text: str) -> common_pb2.PropertyFilter:
    f = common_pb2.PropertyFilter(name=name, operator=common_pb2.PROPERTY_OPERATOR_EQUALS)
    f.value.string_value = text
    return f


async def five_banners_capped_at_three(stack, database_url):
    """An app with five active banners and an app cap of 3 messages per calendar day."""
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    await admin.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=pb.AppSettings(
        default_time_zone="UTC", cap_rules=[pb.CapRule(id="3-per-day", max_messages=3, calendar_days=1)])),
        metadata=app.auth("admin"))
    for i in range(5):
        await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner(f"c{i}", priority=i)),
                                   metadata=app.auth("admin"))
    return app


async def test_concurrent_pulls_through_three_replicas_never_exceed_the_cap(stack, database_url):
    app = await five_banners_capped_at_three(stack, database_url)
    peers = {"segmentation": stack.target("segmentation"), "delivery": "127.0.0.1:9"}
    replicas = [await start_host(DECISION, database_url, peers) for _ in range(3)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{h.port}") for h in replicas]
    try:
        stubs = [internal_grpc.DecisionInternalServiceStub(c) for c in channels]
        request = internal_pb.DecideRequest(app_id=app.id, user_id="busy-user", limit=2)
        replies = await asyncio.gather(*(stubs[i % 3].Decide(request, metadata=INTERNAL) for i in range(200)))
    finally:
        for c in channels:
            await c.close()
        for h in replicas:
            await h.stop()
    handed_out = [d for r in replies for d in r.decisions]
    assert len(handed_out) == 3
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM decision.deliveries WHERE app_id = $1", app.id) == 3
    finally:
        await conn.close()


async def test_a_batch_decides_each_request_on_its_own_and_keeps_caps_exact(stack, database_url):
    app = await five_banners_capped_at_three(stack, database_url)
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    requests = [internal_pb.DecideRequest(app_id=app.id, user_id="batch-user", limit=2) for _ in range(20)]
    requests[1].user_id = ""
    reply = await internal.DecideBatch(internal_pb.DecideBatchRequest(requests=requests), metadata=INTERNAL)

    assert len(reply.results) == 20
    refused = reply.results[1]
    assert refused.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "requests[1].user_id" in refused.error.message
    # Twenty pulls of one user decided at once still hand out exactly the cap.
    handed_out = [d for r in reply.results if r.HasField("response") for d in r.response.decisions]
    assert len(handed_out) == 3
    assert sum(r.HasField("response") for r in reply.results) == 19

    too_many = internal_pb.DecideBatchRequest(requests=[internal_pb.DecideRequest(app_id=app.id, user_id="u")] * 257)
    exc = await expect_error(internal.DecideBatch(too_many, metadata=INTERNAL), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"requests"}


async def test_only_events_a_campaign_reacts_to_are_applied_and_each_once(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    campaign = cart_campaign()
    # Due weeks from now: the releasers of other tests' hosts, whose clocks move ahead, never
    # take this send.
    campaign.triggers[0].delay.seconds = 30 * 86400
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign), metadata=app.auth("admin"))
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    log = LogPositions()
    events = [event("view-1", "shopper", "page_view"), event("cart-1", "shopper", "cart_abandoned"),
              event("cart-2", "other", "cart_abandoned"), event("buy-2", "other", "purchase")]
    for e in events:  # after the campaign started
        e.occurred_time.CopyFrom(to_timestamp(datetime.now(timezone.utc)))
    request = internal_pb.ApplyEventsRequest(app_id=app.id, events=events, span=log.span(app.id, events))
    reply = await internal.ApplyEvents(request, metadata=INTERNAL)
    # The triggers and the exception event count; the page view fires and cancels nothing.
    assert reply.applied_count == 3
    # Ingestion's log sends them again (its answer was lost): their positions say they were
    # applied, so no second send starts and nothing is cancelled twice.
    assert (await internal.ApplyEvents(request, metadata=INTERNAL)).applied_count == 0
    conn = await asyncpg.connect(database_url)
    try:
        assert sorted(await conn.fetch("SELECT user_id, status FROM decision.pending_sends WHERE app_id = $1",
                                       app.id)) == [("other", "cancelled"), ("shopper", "pending")]
    finally:
        await conn.close()


async def test_pending_send_survives_a_restart_and_is_delivered_once(stack, database_url, fake_delivery):
    recorder, delivery_target = fake_delivery
    app = await create_app(database_url)
    recorder.only(app)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    campaign = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=cart_campaign()),
                                           metadata=app.auth("admin"))).campaign
    clock = FixedClock(datetime.now(timezone.utc))
    peers = {"segmentation": stack.target("segmentation"), "delivery": delivery_target}
    first = await start_host(DECISION, database_url, peers, clock=clock)
    cart = event("cart-1", "shopper", "cart_abandoned", cart_value=120)
    cart.occurred_time.CopyFrom(to_timestamp(clock.now()))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as ch:
        reply = await internal_grpc.DecisionInternalServiceStub(ch).ApplyEvents(
            internal_pb.ApplyEventsRequest(app_id=app.id, events=[cart]), metadata=INTERNAL)
        assert reply.applied_count == 1
    await first.stop()
    assert recorder.received == []

    clock.advance(timedelta(minutes=31))
    replicas = [await start_host(DECISION, database_url, peers, clock=clock) for _ in range(2)]
    try:
        await eventually(lambda: asyncio.sleep(0, recorder.received), timeout=10)
        await asyncio.sleep(1.2)  # more than two release polls: nothing comes twice
    finally:
        for h in replicas:
            await h.stop()
    ((user, message),) = recorder.received
    assert (user, message.campaign_id, message.content.title) == ("shopper", campaign.id, "Welcome to Nudge!")


async def test_purchase_before_the_delay_cancels_the_send(stack, database_url, fake_delivery):
    recorder, delivery_target = fake_delivery
    app = await create_app(database_url)
    recorder.only(app)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=cart_campaign()), metadata=app.auth("admin"))
    clock = FixedClock(datetime.now(timezone.utc))
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            stub = internal_grpc.DecisionInternalServiceStub(ch)
            for e, minutes in ((event("c1", "buyer", "cart_abandoned"), 0), (event("p1", "buyer", "purchase"), 10),
                               (event("c2", "browser", "cart_abandoned"), 0)):
                e.occurred_time.CopyFrom(to_timestamp(clock.now() + timedelta(minutes=minutes)))
                await stub.ApplyEvents(internal_pb.ApplyEventsRequest(app_id=app.id, events=[e]), metadata=INTERNAL)
            clock.advance(timedelta(minutes=31))
            await eventually(lambda: asyncio.sleep(0, recorder.received), timeout=10)
            await asyncio.sleep(0.8)
    finally:
        await host.stop()
    assert [user for user, _ in recorder.received] == ["browser"]


async def test_an_exception_cancels_only_its_own_triggers_sends_and_only_when_its_filters_pass(
        stack, database_url, fake_delivery):
    """"The user ignored message A": a follow-up 30 minutes after A's impression, cancelled by
    a click on A — not by a click on another message, and not the campaign's other trigger."""
    recorder, delivery_target = fake_delivery
    app = await create_app(database_url)
    recorder.only(app)
    follow_up = banner("Follow-up", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    follow_up.triggers.add(event_name="message_impression", delay=duration_pb2.Duration(seconds=1800),
                           property_filters=[equals("campaign_id", "cmp_a")],
                           exception_events=[pb.ExceptionEvent(event_name="message_clicked",
                                                               property_filters=[equals("campaign_id", "cmp_a")])])
    follow_up.triggers.add(event_name="cart_abandoned", delay=duration_pb2.Duration(seconds=1800))
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=follow_up), metadata=app.auth("admin"))
    clock = FixedClock(datetime.now(timezone.utc) + timedelta(hours=2))  # the stack's decision never releases
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    events = [
        (event("i1", "ignorer", "message_impression", campaign_id="cmp_a"), 0),
        (event("i2", "clicked-b", "message_impression", campaign_id="cmp_a"), 0),
        (event("k2", "clicked-b", "message_clicked", campaign_id="cmp_b"), 5),
        (event("i3", "clicked-a", "message_impression", campaign_id="cmp_a"), 0),
        (event("k3", "clicked-a", "message_clicked", campaign_id="cmp_a"), 5),
        (event("c4", "both", "cart_abandoned"), 0),
        (event("i4", "both", "message_impression", campaign_id="cmp_a"), 1),
        (event("k4", "both", "message_clicked", campaign_id="cmp_a"), 5),
    ]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            stub = internal_grpc.DecisionInternalServiceStub(ch)
            for e, minutes in events:
                e.occurred_time.CopyFrom(to_timestamp(clock.now() + timedelta(minutes=minutes)))
            await stub.ApplyEvents(internal_pb.ApplyEventsRequest(app_id=app.id, events=[e for e, _ in events]),
                                   metadata=INTERNAL)
            clock.advance(timedelta(minutes=40))
            await eventually(lambda: asyncio.sleep(0, len(recorder.received) >= 3 or None), timeout=10)
            await asyncio.sleep(0.8)
    finally:
        await host.stop()
    assert sorted(user for user, _ in recorder.received) == ["both", "clicked-b", "ignorer"]
    conn = await asyncpg.connect(database_url)
    try:
        cancelled = await conn.fetch("SELECT user_id, trigger_index FROM decision.pending_sends"
                                     " WHERE app_id = $1 AND status = 'cancelled' ORDER BY user_id", app.id)
    finally:
        await conn.close()
    assert [tuple(r) for r in cancelled] == [("both", 0), ("clicked-a", 0)]


async def test_entering_a_segment_triggers_once(stack, database_url, fake_delivery):
    recorder, delivery_target = fake_delivery
    app = await create_app(database_url)
    recorder.only(app)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    # The segment must be one of the app's: a campaign naming an unknown one is refused.
    vip = (await seg_grpc.SegmentationServiceStub(stack.channel("segmentation")).CreateSegment(
        seg_pb.CreateSegmentRequest(name="vip", rule=seg_pb.Rule(platform=seg_pb.PlatformCondition(platforms=[1]))),
        metadata=app.auth("admin"))).segment.id
    welcome = banner("VIP welcome", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    welcome.triggers.add(segment_entered_id=vip, delay=duration_pb2.Duration(seconds=1800))
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=welcome), metadata=app.auth("admin"))
    clock = FixedClock(datetime.now(timezone.utc) + timedelta(hours=2))  # the stack's decision never releases
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            stub = internal_grpc.DecisionInternalServiceStub(ch)
            change = internal_pb.UserChange(user_id="vip-1", change_id="chg-1", entered_segment_ids=[vip],
                                            context=common_pb2.UserContext(user_id="vip-1", segment_ids=[vip]))
            for _ in range(2):  # announced twice (at least once), triggers once
                await stub.ApplyUserChanges(internal_pb.ApplyUserChangesRequest(app_id=app.id, changes=[change]),
                                            metadata=INTERNAL)
            clock.advance(timedelta(minutes=31))
            await eventually(lambda: asyncio.sleep(0, recorder.received), timeout=10)
            await asyncio.sleep(0.8)
    finally:
        await host.stop()
    assert [user for user, _ in recorder.received] == ["vip-1"]


async def test_explain_names_the_cap_and_the_window(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    await admin.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=pb.AppSettings(
        default_time_zone="UTC", cap_rules=[pb.CapRule(id="1-per-day", max_messages=1, calendar_days=1)])),
        metadata=app.auth("admin"))
    now = datetime.now(timezone.utc)
    closed = pb.SendWindow(start_minute=(now.hour * 60 + 120) % 1440, end_minute=(now.hour * 60 + 180) % 1440)
    night = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("Later", 9, send_window=closed)),
                                        metadata=app.auth("admin"))).campaign
    # Shown again after a pull (lifetime max 5, not the on-request default of once), so what
    # holds it back is the app's cap.
    first = (await admin.CreateCampaign(pb.CreateCampaignRequest(
        campaign=banner("First", 5, caps=pb.CampaignCaps(lifetime_max=5))),
                                        metadata=app.auth("admin"))).campaign
    second = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("Second", 1)),
                                         metadata=app.auth("admin"))).campaign
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    got = await internal.Decide(internal_pb.DecideRequest(app_id=app.id, user_id="ex"), metadata=INTERNAL)
    assert [d.campaign_id for d in got.decisions] == [first.id]
    explained = await admin.ExplainDecision(pb.ExplainDecisionRequest(user_id="ex"), metadata=app.auth("admin"))
    why = {c.campaign_id: c for c in explained.campaigns}
    assert why[night.id].reason == "OUTSIDE_WINDOW" and why[night.id].HasField("until_time")
    assert why[first.id].reason == "CAPPED" and "1-per-day" in why[first.id].detail
    assert why[second.id].reason == "CAPPED"
    tomorrow = (now + timedelta(days=1)).date()
    assert why[second.id].until_time.ToDatetime().date() == tomorrow


async def test_a_users_first_event_replaces_the_context_kept_of_them_as_unknown(stack, database_url):
    """Decision keeps the context of a user segmentation does not know (pulls before any
    event cost no call to segmentation); segmentation announces the user's creation, even
    when it enters no segment, and that replaces it."""
    app = await create_app(database_url)
    decision = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    before = await decision.Decide(internal_pb.DecideRequest(app_id=app.id, user_id="newcomer"), metadata=INTERNAL)
    assert not before.user.known
    first = event("first-1", "newcomer", "app_open")
    first.platform = common_pb2.PLATFORM_IOS
    segmentation = seg_internal_grpc.SegmentationInternalServiceStub(stack.channel("segmentation"))
    await segmentation.ApplyEvents(seg_internal_pb.ApplyEventsRequest(app_id=app.id, events=[first]),
                                   metadata=INTERNAL)

    async def known():
        user = (await decision.Decide(internal_pb.DecideRequest(app_id=app.id, user_id="newcomer"),
                                      metadata=INTERNAL)).user
        return user.known and user

    after = await eventually(known, timeout=5)
    assert list(after.platforms) == [common_pb2.PLATFORM_IOS]


async def test_a_send_whose_trigger_enters_its_audience_waits_for_segmentation(stack, database_url, fake_delivery):
    """Ingestion hands an event to decision and segmentation at the same time. A campaign for
    purchasers, triggered by a purchase, must not drop the first purchase as "not in the
    audience" because decision saw it first."""
    recorder, delivery_target = fake_delivery
    app = await create_app(database_url)
    recorder.only(app)
    segments = seg_grpc.SegmentationServiceStub(stack.channel("segmentation"))
    purchasers = (await segments.CreateSegment(seg_pb.CreateSegmentRequest(name="Purchasers", rule=seg_pb.Rule(
        event=seg_pb.EventCondition(name="purchase", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=1))),
        metadata=app.auth("admin"))).segment
    campaign = banner("Thanks", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    campaign.triggers.add(event_name="purchase")
    campaign.audience.include_segment_ids.append(purchasers.id)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    created = (await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign),
                                          metadata=app.auth("admin"))).campaign
    # An hour ahead: the stack's own decision (same database, the real clock) must not be the
    # one to release this send.
    clock = FixedClock(datetime.now(timezone.utc) + timedelta(hours=1))
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    try:
        purchase = event("buy-first", "first-buyer", "purchase")
        purchase.occurred_time.CopyFrom(to_timestamp(clock.now()))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            await internal_grpc.DecisionInternalServiceStub(ch).ApplyEvents(
                internal_pb.ApplyEventsRequest(app_id=app.id, events=[purchase]), metadata=INTERNAL)
        await asyncio.sleep(0.5)
        assert recorder.received == []  # segmentation has not seen the purchase yet: waiting
        await seg_internal_grpc.SegmentationInternalServiceStub(stack.channel("segmentation")).ApplyEvents(
            seg_internal_pb.ApplyEventsRequest(app_id=app.id, events=[purchase]), metadata=INTERNAL)
        clock.advance(timedelta(seconds=1))  # past the wait's next look
        ((user, message),) = await eventually(lambda: asyncio.sleep(0, recorder.received), timeout=10)
    finally:
        await host.stop()
    assert user == "first-buyer" and message.campaign_id == created.id


@pytest.mark.parametrize("fake_delivery", [1], indirect=True)
async def test_a_drop_reported_in_a_call_delivery_refused_is_reported_again(stack, database_url, fake_delivery):
    """A send that ends at release is settled only once delivery has counted it: when
    delivery refuses the call that carried it, it is judged again later and reported then."""
    recorder, delivery_target = fake_delivery
    app = await create_app(database_url)
    recorder.only(app)
    clock = FixedClock(datetime.now(timezone.utc) + timedelta(hours=2))  # the stack's decision never releases
    opens = ((clock.now().hour + 12) % 24) * 60
    closed = banner("Closed", delivery_mode=pb.DELIVERY_MODE_TRIGGERED,
                    send_window=pb.SendWindow(start_minute=opens, end_minute=opens + 30, drop_outside_window=True))
    closed.triggers.add(event_name="closed")
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=closed), metadata=app.auth("admin"))
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation"),
                                                     "delivery": delivery_target}, clock=clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as ch:
            e = event("cl1", "late-shopper", "closed")
            e.occurred_time.CopyFrom(to_timestamp(clock.now()))
            await internal_grpc.DecisionInternalServiceStub(ch).ApplyEvents(
                internal_pb.ApplyEventsRequest(app_id=app.id, events=[e]), metadata=INTERNAL)
            await eventually(lambda: asyncio.sleep(0, recorder.refusals == 0), timeout=10)
            clock.advance(timedelta(minutes=5))  # past the failed send's pause

            async def reported():
                return [u.reason for u in recorder.unsent]

            assert await eventually(reported, timeout=10) == [internal_pb.DROP_REASON_OUTSIDE_WINDOW]
    finally:
        await host.stop()
