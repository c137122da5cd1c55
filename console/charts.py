"""The results' charts as Vega-Lite specs, from a GetCampaignStatsResponse (or anything with
its fields). No I/O: render.py turns a spec into SVG with vl-convert."""

from __future__ import annotations

from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
STAGES = ("sent", "delivered", "impression", "click", "conversion")
# Counts are whole numbers: no 0.5 ticks when they are small.
COUNT_AXIS = {"tickMinStep": 1, "format": "d"}
DAILY = (("delivered", "delivered"), ("impressions", "impressions"), ("clicks", "clicks"),
         ("conversions", "conversions"))


def variant_name(v: Any) -> str:
    return "control" if v.control else v.variant_id


def funnel_spec(stats: Any) -> dict[str, Any]:
    """Grouped bars: for each funnel step, one bar per variant (control included)."""
    rows = []
    for v in stats.variants:
        for step in v.funnel:
            rows.append({"variant": variant_name(v), "stage": STAGES[step.stage - 1] if 1 <= step.stage <= 5 else "?",
                         "count": int(step.count)})
    return {
        "$schema": SCHEMA, "width": 480, "height": 220, "title": "Funnel",
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "stage", "type": "nominal", "sort": list(STAGES), "title": None, "axis": {"labelAngle": 0}},
            "xOffset": {"field": "variant", "type": "nominal"},
            "y": {"field": "count", "type": "quantitative", "title": "users", "axis": COUNT_AXIS},
            "color": {"field": "variant", "type": "nominal"},
        },
    }


def daily_spec(stats: Any) -> dict[str, Any]:
    """One line per variant for each count, a panel per count, over the days asked for."""
    rows = []
    for day in stats.days:
        for v in day.variants:
            clicks = sum(v.clicks_by_button.values())
            values = {"delivered": v.delivered, "impressions": v.impressions, "clicks": clicks,
                      "conversions": v.conversions}
            for measure, label in DAILY:
                rows.append({"date": day.date, "variant": variant_name(v), "measure": label,
                             "count": int(values[measure])})
    return {
        "$schema": SCHEMA, "title": f"By day ({stats.time_zone or 'UTC'})",
        "data": {"values": rows},
        "facet": {"row": {"field": "measure", "type": "nominal", "sort": [label for _, label in DAILY],
                          "title": None}},
        "spec": {
            "width": 480, "height": 90,
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "date", "type": "temporal", "timeUnit": "yearmonthdate", "title": None},
                "y": {"field": "count", "type": "quantitative", "title": None, "axis": COUNT_AXIS},
                "color": {"field": "variant", "type": "nominal"},
            },
        },
        "resolve": {"scale": {"y": "independent"}},
    }
