"""GetCampaignStats over a range of days: one bucket per day in the app's time zone (across
a DST change), a message counted on the day it was sent with its interactions and conversion;
every bucket adds up as the totals do, the buckets sum to the totals over the range, and each
variant's funnel (sent → delivered → impression → click → conversion) reads the same counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import asyncpg
import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_internal_service_pb2 as internal_pb
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as internal_grpc
from nudge.delivery.v1 import delivery_service_pb2 as pb
from services.decision.variants import CONTROL, assign_variant
from tests.conftest import INTERNAL_TOKEN
from tests.helpers import Clients, create_app, create_campaign, event, expect_error, fetch_messages, make_campaign
from tests.helpers import violated_fields
from tests.service.test_stats import adds_up

NEW_YORK = ZoneInfo("America/New_York")  # clocks go forward on 2026-03-08
DAYS = ["2026-03-07", "2026-03-08", "2026-03-09"]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


# When each user's message was sent, and the day of the range it belongs to (None: outside).
SENT_AT = [
    (local("2026-03-06T23:59"), None),
    (local("2026-03-07T23:30"), "2026-03-07"),  # 2026-03-08 in UTC
    (local("2026-03-08T23:30"), "2026-03-08"),  # after the change: 03:30 UTC the next day
    (local("2026-03-09T00:30"), "2026-03-09"),
    (local("2026-03-09T23:59"), "2026-03-09"),
    (local("2026-03-10T00:00"), None),
]
ARM = {"A": "A", "B": "B", CONTROL: "control"}


def row_key(v: pb.VariantStats) -> str:
    return "control" if v.control else v.variant_id


COUNTS = ("sent", "delivered", "impressions", "conversions", "dismissals", "expired", "dropped", "waiting")


async def test_daily_buckets_in_the_app_zone_add_up_to_the_totals(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    await api.decision.UpdateAppSettings(decision_pb.UpdateAppSettingsRequest(
        settings=decision_pb.AppSettings(default_time_zone="America/New_York")), metadata=admin)
    c = make_campaign("Over time")
    c.conversion.CopyFrom(decision_pb.Conversion(event_names=["purchase"], deadline=duration_pb2.Duration(seconds=86400)))
    b = c.variants.add()
    b.CopyFrom(c.variants[0])
    b.id = "B"
    c.control_weight = 1
    campaign = await create_campaign(api, app, c)

    users = [f"day-{i}" for i in range(36)]
    arms = {u: ARM[assign_variant(campaign, u)] for u in users}
    sent_at = {u: SENT_AT[i % len(SENT_AT)] for i, u in enumerate(users)}
    client = app.auth("client")
    shown, clicked, converted = set(), set(), set()
    for i, u in enumerate(users):
        got = await fetch_messages(api, app, u)
        assert bool(got) == (arms[u] != "control")
        if got and i % 2 == 0:
            await api.delivery.ReportInteraction(pb.ReportInteractionRequest(
                message_id=got[0].message_id, user_id=u, type=pb.INTERACTION_TYPE_IMPRESSION), metadata=client)
            shown.add(u)
            if i % 4 == 0:
                await api.delivery.ReportInteraction(pb.ReportInteractionRequest(
                    message_id=got[0].message_id, user_id=u, type=pb.INTERACTION_TYPE_CLICK, button_id="tour"),
                    metadata=client)
                clicked.add(u)
        if i % 3 == 0:
            converted.add(u)
    internal = internal_grpc.DeliveryInternalServiceStub(stack.channel("delivery"))
    purchases = [event(f"buy-{u}", u, "purchase") for u in converted]
    for e in purchases:
        e.occurred_time.GetCurrentTime()
    reply = await internal.ApplyEvents(internal_pb.ApplyEventsRequest(app_id=app.id, events=purchases),
                                       metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),))
    assert reply.conversion_count == len(converted)

    # The messages were sent now; place each at its instant (the time a message was sent is
    # all the buckets read).
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """UPDATE delivery.messages m SET created_at = x.at
               FROM unnest($2::text[], $3::timestamptz[]) AS x(u, at)
               WHERE m.app_id = $1 AND m.user_id = x.u""",
            app.id, users, [sent_at[u][0] for u in users])
    finally:
        await conn.close()

    stats = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(
        campaign_id=campaign.id, start_date=DAYS[0], end_date=DAYS[-1]), metadata=admin)
    assert stats.time_zone == "America/New_York"
    assert [d.date for d in stats.days] == DAYS
    totals = {row_key(v): v for v in stats.variants}
    assert list(totals) == ["A", "B", "control"]
    for day in stats.days:
        assert [row_key(v) for v in day.variants] == list(totals)
        assert all(adds_up(v) for v in day.variants)

    def expected(arm: str, day: str | None = None, among=None) -> int:
        return sum(1 for u in users if arms[u] == arm and sent_at[u][1] is not None
                   and (day is None or sent_at[u][1] == day) and (among is None or u in among))

    for arm in totals:
        for day in stats.days:
            v = next(v for v in day.variants if row_key(v) == arm)
            assert (v.sent, v.impressions, sum(v.clicks_by_button.values()), v.conversions) == (
                expected(arm, day.date), expected(arm, day.date, shown), expected(arm, day.date, clicked),
                expected(arm, day.date, converted)), (arm, day.date)
        total = totals[arm]
        assert adds_up(total) and total.sent == expected(arm) and total.conversions == expected(arm, among=converted)
        rows = [next(v for v in d.variants if row_key(v) == arm) for d in stats.days]
        for name in COUNTS:
            assert sum(getattr(v, name) for v in rows) == getattr(total, name), (arm, name)
        clicks = sum(total.clicks_by_button.values())
        assert sum(sum(v.clicks_by_button.values()) for v in rows) == clicks
        assert [(s.stage, s.count) for s in total.funnel] == [
            (pb.FUNNEL_STAGE_SENT, total.sent), (pb.FUNNEL_STAGE_DELIVERED, total.delivered),
            (pb.FUNNEL_STAGE_IMPRESSION, total.impressions), (pb.FUNNEL_STAGE_CLICK, clicks),
            (pb.FUNNEL_STAGE_CONVERSION, total.conversions)]
        if total.sent:
            assert total.funnel[1].rate == total.delivery_rate
        if total.impressions:
            assert total.funnel[3].rate == clicks / total.impressions
    assert totals["A"].sent and totals["B"].sent and totals["control"].sent and totals["A"].impressions

    # Without dates the totals count every message, no buckets.
    everything = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=campaign.id),
                                                     metadata=admin)
    assert not everything.days and not everything.time_zone
    assert sum(v.sent for v in everything.variants) == len(users)

    # One day: the same as that day's bucket.
    one = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(
        campaign_id=campaign.id, start_date=DAYS[1], end_date=DAYS[1]), metadata=admin)
    assert list(one.variants) == list(one.days[0].variants) == list(stats.days[1].variants)


async def test_bad_date_ranges_name_their_field(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    campaign = await create_campaign(api, app, make_campaign())
    cases = [
        ({"start_date": "2026-03-01"}, {"end_date"}),
        ({"end_date": "2026-03-01"}, {"start_date"}),
        ({"start_date": "2026-13-01", "end_date": "2026-03-01"}, {"start_date"}),
        ({"start_date": "2026-03-01", "end_date": "20260302"}, {"end_date"}),
        ({"start_date": "2026-03-02", "end_date": "2026-03-01"}, {"end_date"}),
        ({"start_date": "2025-01-01", "end_date": "2026-01-02"}, {"end_date"}),
        ({"start_date": "2026-03-01", "end_date": "2026-03-02",
          "start_time": timestamp_pb2.Timestamp(seconds=1)}, {"start_date"}),
    ]
    for fields, bad in cases:
        exc = await expect_error(api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(
            campaign_id=campaign.id, **fields), metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == bad, fields
    # 366 days is the most, and an app without a zone counts in UTC.
    ok = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(
        campaign_id=campaign.id, start_date="2024-01-01", end_date="2024-12-31"), metadata=admin)
    assert len(ok.days) == 366 and ok.time_zone == "UTC"
    (message,) = await fetch_messages(api, app, "today")
    today = datetime.now(timezone.utc).date()  # after the send: its day is today or (at midnight) yesterday
    around = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(
        campaign_id=campaign.id, start_date=(today - timedelta(days=1)).isoformat(), end_date=today.isoformat()),
        metadata=admin)
    assert sum(d.variants[0].sent for d in around.days) == around.variants[0].sent == 1
