"""Campaign statistics from raw counts: pure arithmetic.

Counts come from two grouped reads (store.campaign_rows): messages per variant, and
interactions per variant and type; `variant_counts` folds them into one record per variant.

Conversion rate is conversions per delivered message (per exposure for the control group).
Uplift is a variant's conversion rate minus control's, with a 95% Wald interval for the
difference of two proportions: d ± 1.96·sqrt(p1(1-p1)/n1 + p0(1-p0)/n0).
"""

from __future__ import annotations

import math

from nudge.delivery.v1 import delivery_service_pb2 as pb
from services.delivery.model import InteractionRow, VariantCounts, VariantRow

Z95 = 1.959963984540054


def variant_counts(variants: list[VariantRow], interactions: list[InteractionRow]) -> list[VariantCounts]:
    """One record per variant: its messages' counts, and its interactions added up by type
    (clicks per button; survey answers kept whole, to be tallied per question)."""
    counts = {v.variant_id: VariantCounts(v.variant_id, v.control, v.sent, v.delivered, conversions=v.conversions)
              for v in variants}
    for r in interactions:
        c = counts.setdefault(r.variant_id, VariantCounts(r.variant_id))
        if r.type == pb.INTERACTION_TYPE_IMPRESSION:
            c.impressions += r.count
        elif r.type == pb.INTERACTION_TYPE_CLICK:
            c.clicks_by_button[r.button_id] = c.clicks_by_button.get(r.button_id, 0) + r.count
        elif r.type == pb.INTERACTION_TYPE_DISMISS:
            c.dismissals += r.count
        elif r.type == pb.INTERACTION_TYPE_SURVEY_ANSWER:
            c.answers.extend(r.answers)
    return list(counts.values())


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def uplift(conv: int, n: int, control_conv: int, control_n: int) -> tuple[float, float, float]:
    """(difference, low, high) of conversion rates; zeros when either side has no users."""
    if not n or not control_n:
        return 0.0, 0.0, 0.0
    p1, p0 = conv / n, control_conv / control_n
    diff = p1 - p0
    half = Z95 * math.sqrt(p1 * (1 - p1) / n + p0 * (1 - p0) / control_n)
    return diff, diff - half, diff + half


def variant_stats(c: VariantCounts, control: VariantCounts | None) -> pb.VariantStats:
    out = pb.VariantStats(
        variant_id=c.variant_id,
        control=c.control,
        sent=c.sent,
        delivered=c.delivered,
        impressions=c.impressions,
        dismissals=c.dismissals,
        conversions=c.conversions,
        clicks_by_button=c.clicks_by_button,
        impression_rate=_rate(c.impressions, c.delivered),
        click_rate=_rate(sum(c.clicks_by_button.values()), c.impressions),
        conversion_rate=_rate(c.conversions, c.delivered),
    )
    if control is not None and not c.control:
        out.uplift, out.uplift_ci_low, out.uplift_ci_high = uplift(
            c.conversions, c.delivered, control.conversions, control.delivered)
    for blob in c.answers:
        for answer in pb.ReportInteractionRequest.FromString(blob).answers:
            keys = list(answer.choices) or ([str(answer.rating)] if answer.rating else ["text"])
            for key in keys:
                out.survey_answers[f"{answer.question_id}/{key}"] += 1
    return out


def campaign_stats(counts: list[VariantCounts]) -> list[pb.VariantStats]:
    control = next((c for c in counts if c.control), None)
    return [variant_stats(c, control) for c in counts]
