"""Explain and ListPendingSends against real PostgreSQL, segmentation and the releaser: each
triggered send with where it stands (waiting for its delay, held by a window or a cap,
cancelled by which event, dropped why), every instant a UTC Timestamp and, in the text, the
user's local time with its offset."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import grpc
from google.protobuf import duration_pb2

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudgelib.protoconv import to_timestamp
from tests.conftest import INTERNAL_TOKEN, eventually
from tests.helpers import create_app, event, expect_error, violated_fields
from tests.service.test_decision import banner

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
BERLIN = ZoneInfo("Europe/Berlin")
S = pb.PendingSendState


def triggered(name: str, event_name: str, delay_seconds: int = 0, **kw) -> pb.Campaign:
    c = banner(name, delivery_mode=pb.DELIVERY_MODE_TRIGGERED, **kw)
    trigger = c.triggers.add(event_name=event_name, delay=duration_pb2.Duration(seconds=delay_seconds))
    if event_name == "cart_abandoned":
        trigger.exception_events.add(event_name="purchase")
    return c


def at(e, instant: datetime):
    e.occurred_time.CopyFrom(to_timestamp(instant))
    return e


def by_campaign(explained: pb.ExplainDecisionResponse) -> dict[str, pb.CampaignExplanation]:
    return {c.campaign_name: c for c in explained.campaigns}


async def test_explain_shows_each_pending_send_and_how_the_recent_ones_ended(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    auth = app.auth("admin")
    # The user has no zone of their own: the app's default (Berlin, +01:00 in winter) is theirs.
    await admin.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=pb.AppSettings(
        default_time_zone="Europe/Berlin", cap_rules=[pb.CapRule(id="1-per-day", max_messages=1, calendar_days=1)])),
        metadata=auth)
    now = datetime.now(timezone.utc)
    local = now.astimezone(BERLIN)
    closed = pb.SendWindow(start_minute=(local.hour + 2) % 24 * 60, end_minute=(local.hour + 3) % 24 * 60)
    dropping = pb.SendWindow(start_minute=closed.start_minute, end_minute=closed.end_minute, drop_outside_window=True)
    # Shown more than once (not the on-request default of once), so the app's cap holds it back.
    for c in (banner("Banner", 9, caps=pb.CampaignCaps(lifetime_max=5)),
              triggered("Cart", "cart_abandoned", 1800),
              # Past the app's caps: held by its window alone (under the day cap too, its
              # opening could fall before or after midnight, as the clock has it).
              triggered("Windowed", "visit", send_window=closed, caps=pb.CampaignCaps(bypass_app_caps=True)),
              triggered("Capped", "level_up"),
              triggered("Dropper", "visit", send_window=dropping)):
        await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=c), metadata=auth)
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    # The banner is handed out: the day's cap is full from now on.
    got = await internal.Decide(internal_pb.DecideRequest(app_id=app.id, user_id="ana"), metadata=INTERNAL)
    assert [d.campaign_id for d in got.decisions]
    # The events happen once the campaigns are active: one from before would fire nothing.
    start = datetime.now(timezone.utc)
    now = start + timedelta(milliseconds=2)
    events = [at(event("c1", "ana", "cart_abandoned"), start),
              at(event("p1", "ana", "purchase"), start + timedelta(milliseconds=1)),
              at(event("c2", "ana", "cart_abandoned"), now),
              at(event("v1", "ana", "visit"), now),
              at(event("l1", "ana", "level_up"), now)]
    await internal.ApplyEvents(internal_pb.ApplyEventsRequest(app_id=app.id, events=events), metadata=INTERNAL)

    async def settled():
        # The sends due at once are judged by the releaser: held, held, dropped.
        explained = await admin.ExplainDecision(pb.ExplainDecisionRequest(user_id="ana"), metadata=auth)
        why = by_campaign(explained)
        states = [s.state for name in ("Windowed", "Capped", "Dropper") for s in why[name].pending_sends]
        return why if states == [S.PENDING_SEND_STATE_HELD, S.PENDING_SEND_STATE_HELD,
                                 S.PENDING_SEND_STATE_DROPPED] else None

    why = await eventually(settled)

    later, cancelled = why["Cart"].pending_sends  # newest trigger first
    assert (later.state, later.reason, later.cause) == (S.PENDING_SEND_STATE_WAITING_FOR_DELAY, "DELAY", "event:c2")
    due = now + timedelta(minutes=30)
    assert later.until_time.ToDatetime(timezone.utc) == later.due_time.ToDatetime(timezone.utc)
    assert abs(later.due_time.ToDatetime(timezone.utc) - due) < timedelta(seconds=1)
    assert later.trigger_time == to_timestamp(now)
    assert later.until_time.ToDatetime(timezone.utc).astimezone(BERLIN).isoformat(timespec="seconds") in later.detail
    assert (cancelled.state, cancelled.reason) == (S.PENDING_SEND_STATE_CANCELLED, "EXCEPTION_EVENT")
    assert (cancelled.cancelled_by_event_name, cancelled.cancelled_by_event_id) == ("purchase", "p1")
    assert cancelled.cause == "event:c1" and cancelled.HasField("finish_time")
    assert "purchase" in cancelled.detail

    opening = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    (held,) = why["Windowed"].pending_sends
    assert (held.reason, held.until_time.ToDatetime(timezone.utc)) == ("OUTSIDE_WINDOW", opening)
    assert opening.isoformat() in held.detail and opening.isoformat().endswith("+01:00")
    assert held.campaign_name == "Windowed" and held.expire_time.ToDatetime(timezone.utc) > opening

    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), BERLIN)
    (capped,) = why["Capped"].pending_sends
    assert (capped.reason, capped.rule, capped.until_time.ToDatetime(timezone.utc)) == ("CAPPED", "1-per-day",
                                                                                      midnight)
    assert f"capped by 1-per-day until {midnight.isoformat()}" in capped.detail

    (dropped,) = why["Dropper"].pending_sends
    assert (dropped.reason, dropped.HasField("until_time")) == ("OUTSIDE_WINDOW", False)

    # Caps and windows of the campaigns themselves read the same way.
    assert (why["Banner"].reason, why["Banner"].rule) == ("CAPPED", "1-per-day")
    assert why["Banner"].detail == f"capped by 1-per-day until {midnight.isoformat()}"
    assert why["Banner"].until_time.ToDatetime(timezone.utc) == midnight

    # The admin RPC lists the same sends with the same detail, page by page.
    listed, token = [], ""
    while True:
        page = await admin.ListPendingSends(pb.ListPendingSendsRequest(user_id="ana", page_size=2, page_token=token),
                                            metadata=auth)
        assert len(page.pending_sends) <= 2
        listed.extend(page.pending_sends)
        token = page.next_page_token
        if not token:
            break
    explained = [s for c in why.values() for s in c.pending_sends]
    assert sorted(listed, key=lambda s: s.id) == sorted(explained, key=lambda s: s.id)
    assert len(listed) == 5
    assert [s.trigger_time.ToDatetime() for s in listed] == sorted((s.trigger_time.ToDatetime() for s in listed),
                                                                   reverse=True)
    # Another user has none.
    other = await admin.ListPendingSends(pb.ListPendingSendsRequest(user_id="bob"), metadata=auth)
    assert list(other.pending_sends) == [] and other.next_page_token == ""


async def test_list_pending_sends_is_admin_only_and_checks_its_fields(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    await expect_error(admin.ListPendingSends(pb.ListPendingSendsRequest(user_id="u"), metadata=app.auth("client")),
                       grpc.StatusCode.PERMISSION_DENIED)
    missing = await expect_error(admin.ListPendingSends(pb.ListPendingSendsRequest(), metadata=app.auth("admin")),
                                 grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(missing) == {"user_id"}
    bad = await expect_error(admin.ListPendingSends(pb.ListPendingSendsRequest(user_id="u", page_token="nope"),
                                                    metadata=app.auth("admin")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(bad) == {"page_token"}


async def test_after_delete_user_every_read_answers_as_for_a_user_never_seen(stack, database_url):
    """DeleteUser (ingestion) erases the user everywhere; then Explain, ListPendingSends, a
    pull, segmentation's profile and a second decision replica's caches know nothing of them."""
    from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
    from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
    from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
    from nudgetools import demo
    from services.decision.server import SPEC as DECISION
    from tests.conftest import start_host
    from tests.helpers import Clients, track

    app = await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    signed_up = (await api.segmentation.CreateSegment(seg_pb.CreateSegmentRequest(name="Signed up", rule=seg_pb.Rule(
        event=seg_pb.EventCondition(name="signup", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=1))),
        metadata=admin)).segment
    await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=demo.welcome_campaign(signed_up.id)),
                                      metadata=admin)
    await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=triggered("Cart", "cart_abandoned", 1800)),
                                      metadata=admin)
    await api.ingestion.Identify(ingestion_pb.IdentifyRequest(user_id="gone", time_zone="Europe/Paris"),
                                 metadata=app.auth("events"))
    await api.ingestion.TrackEvents(track([event("s1", "gone", "signup"), event("c1", "gone", "cart_abandoned")]),
                                    metadata=app.auth("events"))

    async def fetch(user: str):
        return (await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=user),
                                                 metadata=app.auth("client"))).messages

    async def pending(user: str):
        return list((await api.decision.ListPendingSends(pb.ListPendingSendsRequest(user_id=user),
                                                         metadata=admin)).pending_sends)

    async def explain(user: str):
        explained = await api.decision.ExplainDecision(pb.ExplainDecisionRequest(user_id=user), metadata=admin)
        explained.user.user_id = ""
        return explained

    assert len(await eventually(lambda: fetch("gone"))) == 1
    assert len(await eventually(lambda: pending("gone"))) == 1
    # A second decision replica has decided for the user: their context and history are cached there.
    replica = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation")})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as ch:
            other = internal_grpc.DecisionInternalServiceStub(ch)

            async def decide(user: str):
                reply = await other.Decide(internal_pb.DecideRequest(app_id=app.id, user_id=user), metadata=INTERNAL)
                return reply.user.known, [d.campaign_id for d in reply.decisions]

            known, _ = await decide("gone")
            assert known

            assert (await api.ingestion.DeleteUser(ingestion_pb.DeleteUserRequest(user_id="gone"),
                                                   metadata=admin)).completed

            assert await pending("gone") == [] == await pending("never-seen-1")
            assert await explain("gone") == await explain("never-seen-2")
            # The other replica hears of the erasure through PostgreSQL (NOTIFY), a moment later.
            assert await decide("never-seen-3") == (False, [])
            async def forgotten():
                return await decide("gone") == (False, [])

            await eventually(forgotten, timeout=5)
            assert [m.campaign_id for m in await fetch("gone")] == [m.campaign_id for m in await fetch("never-seen-4")]
            for user in ("gone", "never-seen-5"):
                await expect_error(api.segmentation.GetUserProfile(seg_pb.GetUserProfileRequest(user_id=user),
                                                                   metadata=admin), grpc.StatusCode.NOT_FOUND)
    finally:
        await replica.stop()
