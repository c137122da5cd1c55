"""The results' Vega-Lite specs hold the numbers of the stats, one row per variant and step
(funnel) or per day, variant and count (daily), control named as such."""

from __future__ import annotations

from console.charts import daily_spec, funnel_spec
from nudge.delivery.v1 import delivery_service_pb2 as pb


def stats() -> pb.GetCampaignStatsResponse:
    s = pb.GetCampaignStatsResponse(time_zone="Europe/Paris")
    a = s.variants.add(variant_id="A")
    a.funnel.add(stage=pb.FUNNEL_STAGE_SENT, count=10)
    a.funnel.add(stage=pb.FUNNEL_STAGE_CONVERSION, count=2)
    c = s.variants.add(variant_id="", control=True)
    c.funnel.add(stage=pb.FUNNEL_STAGE_SENT, count=4)
    day = s.days.add(date="2026-03-01")
    v = day.variants.add(variant_id="A", delivered=7, impressions=5, conversions=1)
    v.clicks_by_button["ok"] = 2
    v.clicks_by_button["later"] = 1
    return s


def test_the_funnel_has_a_bar_per_variant_and_step():
    spec = funnel_spec(stats())
    assert spec["data"]["values"] == [{"variant": "A", "stage": "sent", "count": 10},
                                      {"variant": "A", "stage": "conversion", "count": 2},
                                      {"variant": "control", "stage": "sent", "count": 4}]
    assert spec["encoding"]["x"]["sort"] == ["sent", "delivered", "impression", "click", "conversion"]


def test_the_daily_series_has_each_count_of_each_variant_and_day():
    spec = daily_spec(stats())
    assert spec["title"] == "By day (Europe/Paris)"
    assert {(r["measure"], r["count"]) for r in spec["data"]["values"]} == {
        ("delivered", 7), ("impressions", 5), ("clicks", 3), ("conversions", 1)}
    assert {r["date"] for r in spec["data"]["values"]} == {"2026-03-01"}
