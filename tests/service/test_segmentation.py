"""Segmentation against real PostgreSQL, driven over gRPC, with a recording fake of decision
and a fake of ingestion's stored events (the past a new property filter counts):
real-time membership, announcements (once, in order, retried), time passing on an injected
clock, windows, property filters, rule validation, versions, paging and erasure.

The service runs on a database of its own: another segmentation replica on the shared one
(the `stack` fixture's) would rightly send this one's announcements and sweep its users.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_grpc
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as ingestion_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as internal_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from nudgelib import db
from nudgelib.clock import FixedClock
from nudgelib.protoconv import to_datetime, to_timestamp
from services.segmentation.caches import Catalogs, ContextCache
from services.segmentation.membership import Memberships
from services.segmentation.segments import Segments
from services.segmentation.server import SPEC as SEGMENTATION
from services.segmentation.settings import SegmentationSettings
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import App, LogPositions, create_app, expect_error, own_database, violated_fields

START = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
A = pb.AttributeOperator


class RecordingDecision(decision_grpc.DecisionInternalServiceServicer):
    """Decision's ApplyUserChanges as a list; fails with `failing` while it is set."""

    def __init__(self) -> None:
        self.requests: list[decision_pb.ApplyUserChangesRequest] = []
        self.failing: grpc.StatusCode | None = None

    async def ApplyUserChanges(self, request, context):
        if self.failing is not None:
            await context.abort(self.failing, "not now")
        self.requests.append(request)
        return decision_pb.ApplyUserChangesResponse()

    async def CampaignsUsingSegment(self, request, context):
        # No campaigns here: DeleteSegment asks decision before it deletes.
        return decision_pb.CampaignsUsingSegmentResponse()

    def changes(self, app_id: str, user_id: str | None = None) -> list[decision_pb.UserChange]:
        return [c for r in self.requests if r.app_id == app_id for c in r.changes
                if user_id is None or c.user_id == user_id]

    def rule_changes(self, app_id: str) -> int:
        return sum(1 for r in self.requests if r.app_id == app_id and r.segments_changed)

    def created(self, app_id: str) -> list[str]:
        return [u for r in self.requests if r.app_id == app_id for u in r.created_user_ids]


class StoredEvents(ingestion_grpc.IngestionInternalServiceServicer):
    """Ingestion's ReadEvents over the events this module sent to segmentation, at the lanes
    and positions their spans gave them: what a new property filter counts of the past."""

    def __init__(self) -> None:
        self.stored: list[tuple[str, int, int, common_pb2.Event]] = []

    def keep(self, app_id: str, events, span: common_pb2.LogSpan) -> None:
        self.stored += [(app_id, lane, position, e) for e, lane, position in zip(events, span.lanes, span.positions)]

    async def ReadEvents(self, request, context):
        upto = {b.lane: b.position for b in request.upto}
        since = to_datetime(request.occurred_since)
        found = sorted((lane, position, e) for app_id, lane, position, e in self.stored
                       if app_id == request.app_id and e.name in request.names
                       and position <= upto.get(lane, 0) and to_datetime(e.occurred_time) >= since)
        yield ingestion_pb.ReadEventsResponse(events=[e for _, _, e in found])


class Seg:
    """The service under test and what it talks to."""

    def __init__(self, host, decision: RecordingDecision, ingestion: StoredEvents, clock: FixedClock,
                 channel: grpc.aio.Channel) -> None:
        self.host = host
        self.decision = decision
        self.ingestion = ingestion
        self.clock = clock
        self.public = pb_grpc.SegmentationServiceStub(channel)
        self.internal = internal_grpc.SegmentationInternalServiceStub(channel)
        self.log = LogPositions()  # as ingestion's log would place what is sent

    async def events(self, app_id: str, *events: common_pb2.Event) -> int:
        span = self.log.span(app_id, events)
        reply = await self.internal.ApplyEvents(internal_pb.ApplyEventsRequest(
            app_id=app_id, events=events, span=span), metadata=INTERNAL)
        self.ingestion.keep(app_id, events, span)
        return reply.applied_count

    async def identify(self, app_id: str, update_id: str, user_id: str, **attributes) -> None:
        update = internal_pb.ProfileUpdate(update_id=update_id, user_id=user_id)
        for name, value in attributes.items():
            update.attributes[name].CopyFrom(value)
        await self.internal.ApplyProfileUpdates(internal_pb.ApplyProfileUpdatesRequest(
            app_id=app_id, updates=[update], span=self.log.span(app_id, [update])), metadata=INTERNAL)

    async def context(self, app_id: str, user_id: str) -> common_pb2.UserContext:
        reply = await self.internal.GetUserContext(internal_pb.GetUserContextRequest(app_id=app_id, user_id=user_id),
                                                   metadata=INTERNAL)
        return reply.context

    async def segment(self, app, rule: pb.Rule, name: str = "s") -> pb.Segment:
        return (await self.public.CreateSegment(pb.CreateSegmentRequest(name=name, rule=rule),
                                                metadata=app.auth("admin"))).segment

    async def estimate(self, app, rule: pb.Rule) -> int:
        return (await self.public.EstimateAudience(pb.EstimateAudienceRequest(rule=rule),
                                                   metadata=app.auth("admin"))).user_count


@pytest.fixture(scope="module")
async def seg_url(database_url):
    async with own_database(database_url, "seg") as url:
        yield url


@pytest.fixture
async def app(seg_url) -> App:
    return await create_app(seg_url)


@pytest.fixture(scope="module")
async def seg(seg_url):
    decision = RecordingDecision()
    ingestion = StoredEvents()
    server = grpc.aio.server()
    decision_grpc.add_DecisionInternalServiceServicer_to_server(decision, server)
    ingestion_grpc.add_IngestionInternalServiceServicer_to_server(ingestion, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    clock = FixedClock(START)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NUDGE_SEGMENTATION_SWEEP_INTERVAL_SECONDS", "0.05")
        env.setenv("NUDGE_SEGMENTATION_OUTBOX_MAX_BACKOFF_SECONDS", "0.2")
        host = await start_host(SEGMENTATION, seg_url, {"decision": f"127.0.0.1:{port}",
                                                        "ingestion": f"127.0.0.1:{port}"}, clock=clock)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    yield Seg(host, decision, ingestion, clock, channel)
    await channel.close()
    await host.stop()
    await server.stop(0)


@pytest.fixture(autouse=True)
def reset(seg):
    seg.clock.set(START)
    seg.decision.failing = None


def event(event_id: str, user_id: str, name: str, at: datetime, **props) -> common_pb2.Event:
    e = common_pb2.Event(event_id=event_id, user_id=user_id, name=name, occurred_time=to_timestamp(at))
    e.properties.update(props)
    return e


def days(n: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(n * 86400))


def ev(name: str, op, count: int = 0, window: int | None = None, **kw) -> pb.Rule:
    c = pb.EventCondition(name=name, operator=op, count=count, **kw)
    if window is not None:
        c.window.CopyFrom(days(window))
    return pb.Rule(event=c)


def value(**kind) -> struct_pb2.Value:
    v = struct_pb2.Value()
    for k, x in kind.items():
        setattr(v, k, x)
    return v


async def test_membership_changes_are_visible_to_the_very_next_call(seg, app):
    segment = await seg.segment(app, ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 2, window=7))
    await seg.events(app.id, event("p1", "u1", "purchase", START))
    ctx = await seg.context(app.id, "u1")  # cached from here on
    assert ctx.known and list(ctx.segment_ids) == []
    await seg.events(app.id, event("p2", "u1", "purchase", START))
    assert list((await seg.context(app.id, "u1")).segment_ids) == [segment.id]
    # A profile update, too: a segment on an attribute holds the user at once.
    pro = await seg.segment(app, pb.Rule(attribute=pb.AttributeCondition(
        name="plan", operator=A.ATTRIBUTE_OPERATOR_EQUALS, value=common_pb2.AttributeValue(string_value="pro"))))
    await seg.identify(app.id, "i1", "u1", plan=common_pb2.AttributeValue(string_value="pro"))
    assert sorted((await seg.context(app.id, "u1")).segment_ids) == sorted([segment.id, pro.id])
    profile = (await seg.public.GetUserProfile(pb.GetUserProfileRequest(user_id="u1"),
                                               metadata=app.auth("admin"))).profile
    assert profile.attributes["plan"].string_value == "pro" and len(profile.segment_ids) == 2


async def test_a_call_repeated_while_the_first_is_applied_has_no_second_effect(seg, app):
    """A reader replica that lost its claim while its call was being applied, and another that
    sends the same items again: the position row serializes them, and the second applies nothing."""
    batch = [event(f"c{i}", f"u{i % 4}", "open", START) for i in range(40)]
    applied = await asyncio.gather(*(seg.events(app.id, *batch) for _ in range(4)))
    assert sorted(applied) == [0, 0, 0, 40]
    assert await seg.estimate(app, ev("open", pb.EVENT_OPERATOR_EXACTLY, 10)) == 4


async def test_entry_and_exit_are_announced_once_with_the_new_context(seg, app):
    segment = await seg.segment(app, ev("open", pb.EVENT_OPERATOR_AT_MOST, 2))
    never = await seg.segment(app, ev("open", pb.EVENT_OPERATOR_NEVER))
    await seg.identify(app.id, "i0", "u1")  # known, never opened: in both
    assert await seg.events(app.id, event("o1", "u1", "open", START)) == 1
    assert await seg.events(app.id, event("o1", "u1", "open", START)) == 0  # redelivered: no effect
    await seg.events(app.id, event("o2", "u1", "open", START))
    await seg.events(app.id, event("o3", "u1", "open", START))

    def announced():
        found = seg.decision.changes(app.id, "u1")
        return len(found) == 3 and found

    changes = await eventually(lambda: asyncio.sleep(0, announced()))
    # In commit order: identify (enters both), o1 (leaves never), o3 (leaves at-most-2); every
    # change carries the user's full context after it. o2 changed nothing decision keeps (no
    # membership, profile field or sooner validity): not announced.
    assert [(list(c.entered_segment_ids), list(c.exited_segment_ids)) for c in changes] == [
        (sorted([segment.id, never.id]), []), ([], [never.id]), ([], [segment.id])]
    assert [list(c.context.segment_ids) for c in changes] == [sorted([segment.id, never.id]), [segment.id], []]
    assert all(c.context.known and c.context.user_id == "u1" for c in changes)
    assert len({c.change_id for c in changes}) == 3
    # A new platform is something decision decides with: announced though no segment moved.
    moved = event("o4", "u1", "open", START)
    moved.platform = common_pb2.PLATFORM_ANDROID
    await seg.events(app.id, moved)
    changes = await eventually(lambda: asyncio.sleep(0, len(seg.decision.changes(app.id, "u1")) == 4
                                                     and seg.decision.changes(app.id, "u1")))
    assert (list(changes[3].entered_segment_ids), list(changes[3].exited_segment_ids)) == ([], [])
    assert list(changes[3].context.platforms) == [common_pb2.PLATFORM_ANDROID]
    # Rule changes are announced as such, once per change.
    await eventually(lambda: asyncio.sleep(0, seg.decision.rule_changes(app.id) == 2))
    await asyncio.sleep(0.2)
    assert seg.decision.rule_changes(app.id) == 2 and len(seg.decision.changes(app.id)) == 4


async def test_a_new_rule_is_not_an_entry_but_later_changes_are(seg, app):
    await seg.events(app.id, event("a1", "u1", "signup", START), event("a2", "u2", "open", START))
    # Their first events created them, entering nothing (there is no rule yet): named together
    # in one request, so that decision drops what it kept of them while they were unknown.
    created = await eventually(lambda: asyncio.sleep(0, seg.decision.created(app.id)))
    assert sorted(created) == ["u1", "u2"] and seg.decision.changes(app.id) == []
    assert len([r for r in seg.decision.requests if r.app_id == app.id and r.created_user_ids]) == 1
    segment = await seg.segment(app, ev("signup", pb.EVENT_OPERATOR_AT_LEAST, 1))
    # u1 is in at once (recomputed with the rule), without an entry announcement...
    assert list((await seg.context(app.id, "u1")).segment_ids) == [segment.id]
    await eventually(lambda: asyncio.sleep(0, seg.decision.rule_changes(app.id) == 1))
    await seg.events(app.id, event("a3", "u1", "open", START), event("a4", "u2", "signup", START))
    changes = await eventually(lambda: asyncio.sleep(0, seg.decision.changes(app.id)))
    await asyncio.sleep(0.2)
    entered = {c.user_id: list(c.entered_segment_ids) for c in seg.decision.changes(app.id)}
    # ...and u2, who signs up afterwards, is announced as entering. Nothing else is: u1's open
    # changed nothing decision keeps.
    assert entered == {"u2": [segment.id]} and len(changes) == 1


async def test_inactivity_is_decided_by_the_clock_and_announced_when_due(seg, app):
    segment = await seg.segment(app, pb.Rule(inactive=pb.InactiveCondition(duration=days(7))))
    await seg.events(app.id, event("i1", "u1", "open", START))
    ctx = await seg.context(app.id, "u1")
    assert list(ctx.segment_ids) == []
    limit = START + timedelta(days=7, microseconds=1)
    assert to_datetime(ctx.valid_until_time) == limit
    seg.clock.set(limit - timedelta(microseconds=1))
    assert list((await seg.context(app.id, "u1")).segment_ids) == []
    seg.clock.set(limit)
    assert list((await seg.context(app.id, "u1")).segment_ids) == [segment.id]  # no job needed
    entered = await eventually(lambda: asyncio.sleep(0, [c for c in seg.decision.changes(app.id, "u1")
                                                         if c.entered_segment_ids]))
    assert [list(c.entered_segment_ids) for c in entered] == [[segment.id]]
    assert not entered[0].context.HasField("valid_until_time")  # nothing changes by time any more


async def test_windows_count_whole_utc_days_today_included(seg, app):
    rule = ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1, window=7)
    segment = await seg.segment(app, rule)
    last_second = datetime(2026, 3, 4, 23, 59, 59, tzinfo=timezone.utc)  # six days before START's day
    await seg.events(app.id, event("w1", "u1", "open", last_second), event("w2", "u2", "open",
                                                                          last_second - timedelta(seconds=1)))
    await seg.events(app.id, event("w3", "u2", "open", datetime(2026, 3, 3, 23, 59, 59, tzinfo=timezone.utc)))
    assert list((await seg.context(app.id, "u1")).segment_ids) == [segment.id]
    ctx = await seg.context(app.id, "u1")
    assert to_datetime(ctx.valid_until_time) == datetime(2026, 3, 11, tzinfo=timezone.utc)
    assert await seg.estimate(app, rule) == 2
    seg.clock.set(datetime(2026, 3, 10, 23, 59, 59, 999999, tzinfo=timezone.utc))
    assert await seg.estimate(app, rule) == 2
    seg.clock.set(datetime(2026, 3, 11, tzinfo=timezone.utc))  # 4 March leaves the window
    assert list((await seg.context(app.id, "u1")).segment_ids) == []
    assert await seg.estimate(app, rule) == 0
    every_day = ev("open", pb.EVENT_OPERATOR_EACH_DAY, days=2)
    seg.clock.set(datetime(2026, 3, 11, 2, tzinfo=timezone.utc))
    await seg.events(app.id, event("w4", "u3", "open", datetime(2026, 3, 10, 1, tzinfo=timezone.utc)),
                     event("w5", "u3", "open", datetime(2026, 3, 11, 1, tzinfo=timezone.utc)))
    assert await seg.estimate(app, every_day) == 1


async def test_property_filters_count_matching_events_including_before_the_segment(seg, app):
    big = ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 1, window=30, property_filters=[
        common_pb2.PropertyFilter(name="cart_value", operator=A.ATTRIBUTE_OPERATOR_GREATER, value=value(number_value=100))])
    await seg.events(app.id, event("b1", "u1", "purchase", START - timedelta(days=2), cart_value=150),
                     event("b2", "u2", "purchase", START, cart_value=50),
                     event("b3", "u3", "purchase", START, cart_value="lots"))
    # Not saved yet: estimated from the past events ingestion keeps.
    assert await seg.estimate(app, big) == 1
    segment = await seg.segment(app, big)  # its counter is filled from the same events
    assert list((await seg.context(app.id, "u1")).segment_ids) == [segment.id]
    assert list((await seg.context(app.id, "u2")).segment_ids) == []
    await seg.events(app.id, event("b4", "u2", "purchase", START, cart_value=100.5))
    assert list((await seg.context(app.id, "u2")).segment_ids) == [segment.id]
    assert await seg.estimate(app, big) == 2
    members = await seg.public.ListSegmentMembers(pb.ListSegmentMembersRequest(segment_id=segment.id),
                                                  metadata=app.auth("admin"))
    assert list(members.user_ids) == ["u1", "u2"]


async def test_a_distance_and_a_dotted_filter_count_the_same_before_and_after_saving(seg, app):
    """"Came within 500 m of our store on a paid plan": from past events while a draft, from
    the counter fed as events arrive once saved; the same filter language both times."""
    near = common_pb2.PropertyFilter(name="where", operator=common_pb2.PROPERTY_OPERATOR_WITHIN_DISTANCE,
                                     circle=common_pb2.GeoCircle(latitude=48.852968, longitude=2.349902,
                                                                 radius_meters=500))
    paid = common_pb2.PropertyFilter(name="plan.tier", operator=common_pb2.PROPERTY_OPERATOR_EQUALS,
                                     value=value(string_value="paid"))
    visit = ev("location", pb.EVENT_OPERATOR_AT_LEAST, 1, window=30, property_filters=[near, paid])
    here, louvre = {"latitude": 48.8535, "longitude": 2.344}, {"latitude": 48.860611, "longitude": 2.337644}
    await seg.events(app.id, event("g1", "near-paid", "location", START, where=here, plan={"tier": "paid"}),
                     event("g2", "far-paid", "location", START, where=louvre, plan={"tier": "paid"}),
                     event("g3", "near-free", "location", START, where=here, plan={"tier": "free"}),
                     event("g4", "flat-name", "location", START, where=here, **{"plan.tier": "paid"}),
                     event("g5", "no-place", "location", START, where="Paris", plan={"tier": "paid"}))
    assert await seg.estimate(app, visit) == 1
    segment = await seg.segment(app, visit)
    assert list((await seg.context(app.id, "near-paid")).segment_ids) == [segment.id]
    for other in ("far-paid", "near-free", "flat-name", "no-place"):
        assert list((await seg.context(app.id, other)).segment_ids) == [], other
    await seg.events(app.id, event("g6", "far-paid", "location", START, where=here, plan={"tier": "paid"}))
    assert await seg.estimate(app, visit) == 2


async def test_invalid_rules_are_refused_naming_the_field(seg, app):
    cases = [
        (ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1, window=1.5), "rule.event.window"),
        (ev("9open", pb.EVENT_OPERATOR_NEVER), "rule.event.name"),
        (ev("open", pb.EVENT_OPERATOR_EACH_DAY, days=0), "rule.event.days"),
        (ev("open", pb.EVENT_OPERATOR_NEVER, count=3), "rule.event.count"),
        (ev("buy", pb.EVENT_OPERATOR_AT_LEAST, 1, property_filters=[common_pb2.PropertyFilter(
            name="v", operator=A.ATTRIBUTE_OPERATOR_GREATER, value=value(bool_value=True))]),
         "rule.event.property_filters[0].value"),
        (ev("buy", pb.EVENT_OPERATOR_AT_LEAST, 1, property_filters=[common_pb2.PropertyFilter(
            name="v", operator=A.ATTRIBUTE_OPERATOR_WITHIN_LAST)]), "rule.event.property_filters[0].operator"),
        (pb.Rule(attribute=pb.AttributeCondition(name="joined", operator=A.ATTRIBUTE_OPERATOR_BEFORE,
                                                 value=common_pb2.AttributeValue(int_value=3))),
         "rule.attribute.value"),
        (pb.Rule(attribute=pb.AttributeCondition(name="joined", operator=A.ATTRIBUTE_OPERATOR_WITHIN_LAST)),
         "rule.attribute.duration"),
        (pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR, rules=[
            pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_UNSPECIFIED]))])),
         "rule.group.rules[0].platform.platforms[0]"),
        (pb.Rule(app_version=pb.AppVersionCondition(operator=A.ATTRIBUTE_OPERATOR_LESS, version="4.x")),
         "rule.app_version.version"),
        (pb.Rule(segment=pb.SegmentMembershipCondition(segment_id="seg_nope")), "rule.segment.segment_id"),
    ]
    for rule, field in cases:
        exc = await expect_error(seg.public.CreateSegment(pb.CreateSegmentRequest(name="bad", rule=rule),
                                                          metadata=app.auth("admin")),
                                 grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == {field}, (field, exc.details())
    # A cycle through another segment is refused on update.
    a = await seg.segment(app, ev("open", pb.EVENT_OPERATOR_NEVER), "a")
    b = await seg.segment(app, pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=a.id)), "b")
    exc = await expect_error(seg.public.UpdateSegment(pb.UpdateSegmentRequest(
        segment_id=a.id, name="a", rule=pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=b.id))),
        metadata=app.auth("admin")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"rule.segment.segment_id"} and "cycle" in exc.details()
    await expect_error(seg.public.DeleteSegment(pb.DeleteSegmentRequest(segment_id=a.id),
                                                metadata=app.auth("admin")), grpc.StatusCode.FAILED_PRECONDITION)


async def test_segments_are_versioned_and_retries_change_nothing(seg, app):
    created = await seg.public.CreateSegment(pb.CreateSegmentRequest(
        name="v", rule=ev("open", pb.EVENT_OPERATOR_NEVER), request_id="r1"), metadata=app.auth("admin"))
    again = await seg.public.CreateSegment(pb.CreateSegmentRequest(
        name="v", rule=ev("open", pb.EVENT_OPERATOR_NEVER), request_id="r1"), metadata=app.auth("admin"))
    assert again.segment.id == created.segment.id
    update = pb.UpdateSegmentRequest(segment_id=created.segment.id, name="v2", expected_version=1,
                                     rule=ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1), request_id="r2")
    assert (await seg.public.UpdateSegment(update, metadata=app.auth("admin"))).segment.version == 2
    assert (await seg.public.UpdateSegment(update, metadata=app.auth("admin"))).segment.version == 2
    update.request_id, update.expected_version = "r3", 1
    await expect_error(seg.public.UpdateSegment(update, metadata=app.auth("admin")), grpc.StatusCode.ABORTED)
    listed = await seg.public.ListSegments(pb.ListSegmentsRequest(), metadata=app.auth("admin"))
    assert [(s.name, s.version) for s in listed.segments] == [("v2", 2)]


async def test_members_and_estimates_page_through_the_population(seg, app):
    segment = await seg.segment(app, ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1))
    await seg.events(app.id, *[event(f"m{i}", f"user{i:02d}", "open" if i % 3 else "close", START)
                               for i in range(12)])
    seen, token = [], ""
    while True:
        page = await seg.public.ListSegmentMembers(pb.ListSegmentMembersRequest(
            segment_id=segment.id, page_size=3, page_token=token), metadata=app.auth("admin"))
        seen += page.user_ids
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"user{i:02d}" for i in range(12) if i % 3]
    estimate = await seg.public.EstimateAudience(pb.EstimateAudienceRequest(segment_id=segment.id),
                                                 metadata=app.auth("admin"))
    assert (estimate.user_count, estimate.total_user_count) == (8, 12)


async def test_announcements_wait_while_decision_refuses_and_arrive_in_order(seg, app, seg_url):
    seg.decision.failing = grpc.StatusCode.UNIMPLEMENTED
    await seg.segment(app, ev("open", pb.EVENT_OPERATOR_AT_LEAST, 2))
    await seg.segment(app, ev("open", pb.EVENT_OPERATOR_AT_LEAST, 3))
    for i in range(3):
        await seg.events(app.id, event(f"q{i}", "u1", "open", START))
    conn = await asyncpg.connect(seg_url)
    try:
        await asyncio.sleep(0.5)
        # Two rule changes, the user's creation by their first event (entering nothing), then
        # two entries.
        assert await conn.fetchval("SELECT count(*) FROM segmentation.outbox WHERE app_id = $1", app.id) == 5
        assert seg.decision.changes(app.id) == []
        seg.decision.failing = None
        changes = await eventually(lambda: asyncio.sleep(0, len(seg.decision.changes(app.id)) == 2
                                                         and seg.decision.changes(app.id)))
        assert [len(c.context.segment_ids) for c in changes] == [1, 2]
        assert seg.decision.created(app.id) == ["u1"]
        await eventually(lambda: conn.fetchval(
            "SELECT count(*) = 0 FROM segmentation.outbox WHERE app_id = $1", app.id))
    finally:
        await conn.close()


async def test_erasure_leaves_nothing_of_the_user(seg, app, seg_url):
    seg.decision.failing = grpc.StatusCode.UNAVAILABLE  # keep an announcement pending
    big = ev("buy", pb.EVENT_OPERATOR_AT_LEAST, 1, property_filters=[
        common_pb2.PropertyFilter(name="x", operator=A.ATTRIBUTE_OPERATOR_EXISTS)])
    await seg.segment(app, big)
    await seg.events(app.id, event("e1", "gone", "buy", START, x=1), event("e2", "kept", "buy", START, x=1))
    await seg.identify(app.id, "e3", "gone", plan=common_pb2.AttributeValue(string_value="pro"))
    await seg.internal.EraseUser(internal_pb.EraseUserRequest(app_id=app.id, user_id="gone"), metadata=INTERNAL)
    ctx = await seg.context(app.id, "gone")
    assert not ctx.known and list(ctx.segment_ids) == [] and not ctx.attributes
    await expect_error(seg.public.GetUserProfile(pb.GetUserProfileRequest(user_id="gone"),
                                                 metadata=app.auth("admin")), grpc.StatusCode.NOT_FOUND)
    conn = await asyncpg.connect(seg_url)
    try:
        for table in ("profiles", "event_totals", "event_days", "outbox"):
            assert await conn.fetchval(f"SELECT count(*) FROM segmentation.{table}"
                                       " WHERE app_id = $1 AND user_id = 'gone'", app.id) == 0, table
        assert await conn.fetchval("SELECT count(*) FROM segmentation.event_totals"
                                   " WHERE app_id = $1 AND user_id = 'kept'", app.id) == 2
    finally:
        await conn.close()
    assert await seg.estimate(app, big) == 1


async def test_a_context_evaluated_after_another_replica_changed_the_rules_uses_the_new_ones(seg_url):
    """This replica holds the app's rules at version 1 (the NOTIFY of a change has not come
    in); another replica adds a segment. A user whose stored memberships have expired is
    evaluated with the rules the database holds, counters of the new segment included."""
    pool = await db.create_pool(seg_url, "segmentation", 1, 2)
    clock = FixedClock(START)
    settings = SegmentationSettings()
    here = Memberships(pool, Catalogs(pool), ContextCache(0), clock, settings)
    elsewhere = Segments(pool, Catalogs(pool), clock, settings)
    app_id = f"app_{secrets.token_hex(4)}"
    try:
        inactive = await elsewhere.create(app_id, "inactive", "", pb.Rule(inactive=pb.InactiveCondition(
            duration=days(7))))
        await here.apply_events(app_id, [event("o1", "u1", "open", START)])  # caches version 1
        opened = await elsewhere.create(app_id, "opened", "", ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1))
        clock.set(START + timedelta(days=8))  # past the stored valid_until: evaluated on read
        context = (await here.user_context(app_id, "u1")).context
        assert sorted(context.segment_ids) == sorted([inactive.id, opened.id])
    finally:
        await here.close()
        await pool.close()
