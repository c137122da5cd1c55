"""Campaign statistics from raw counts: pure arithmetic.

Counts come from two grouped reads (store.campaign_rows): messages per variant and status
(and drop reason), and interactions per variant and type; `variant_counts` folds them into
one record per variant, with a zero record for each of the campaign's variants (and control)
that has none.

Every message row is in exactly one status, and each status goes to exactly one count, so
sent = delivered + expired + dropped + waiting, for control too (its delivered are exposures).

Rates: delivery = delivered / sent; impression = impressions / delivered; click = clicks (all
buttons) / impressions; conversion = conversions per delivered message (per exposure for the
control group). A rate whose denominator is zero is zero.
Uplift is a variant's conversion rate minus control's, with a 95% Wald interval for the
difference of two proportions: d ± 1.96·sqrt(p1(1-p1)/n1 + p0(1-p0)/n0).
"""

from __future__ import annotations

import math
from datetime import date

from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb
from services.delivery.model import CONTROL, InteractionRow, MessageRow, VariantCounts

Z95 = 1.959963984540054
_PREFIX = "DROP_REASON_"
# Every reason a send can be dropped for, as statistics name them (CAPPED, RENDER_FAILED, ...).
DROP_REASONS = tuple(name.removeprefix(_PREFIX) for name in decision_pb.DropReason.keys()
                     if name != "DROP_REASON_UNSPECIFIED")
OTHER = "OTHER"


def reason_name(reason: int) -> str:
    """The stored name of a DropReason value (OTHER for one this build does not know)."""
    name = decision_pb.DropReason.Name(reason) if reason in decision_pb.DropReason.values() else ""
    name = name.removeprefix(_PREFIX)
    return name if name in DROP_REASONS else OTHER


def _new(variant_id: str) -> VariantCounts:
    return VariantCounts(variant_id, control=variant_id == CONTROL,
                         dropped_by_reason=dict.fromkeys(DROP_REASONS, 0))


def variant_counts(messages: list[MessageRow], interactions: list[InteractionRow],
                   variant_ids: list[str] = (), has_control: bool = False) -> list[VariantCounts]:
    """One record per variant: the campaign's own `variant_ids` first (zeros when they have
    no traffic), then any other variant its messages name, then control (when the campaign
    has a control group, or its messages name it). Each has its messages counted by status
    and its interactions added up by type (clicks per button; survey answers kept whole, to
    be tallied per question)."""
    seen = {m.variant_id for m in messages} | {r.variant_id for r in interactions}
    order = list(dict.fromkeys(variant_ids)) + sorted(seen - set(variant_ids) - {CONTROL})
    if has_control or CONTROL in seen:
        order.append(CONTROL)
    counts = {v: _new(v) for v in order}
    for m in messages:
        c = counts[m.variant_id]
        c.sent += m.count
        c.conversions += m.conversions
        if m.status in ("delivered", "control"):
            c.delivered += m.count
        elif m.status == "pending":
            c.waiting += m.count
        elif m.status == "expired":
            c.expired += m.count
        else:  # dropped (and any status a later version adds): never left out of the sum
            reason = m.drop_reason if m.drop_reason in DROP_REASONS else OTHER
            c.dropped_by_reason[reason] += m.count
    for r in interactions:
        c = counts[r.variant_id]
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
        expired=c.expired,
        waiting=c.waiting,
        dropped=c.dropped,
        dropped_by_reason=c.dropped_by_reason,
        delivery_rate=_rate(c.delivered, c.sent),
        impression_rate=_rate(c.impressions, c.delivered),
        click_rate=_rate(sum(c.clicks_by_button.values()), c.impressions),
        conversion_rate=_rate(c.conversions, c.delivered),
    )
    if control is not None and not c.control:
        out.uplift, out.uplift_ci_low, out.uplift_ci_high = uplift(
            c.conversions, c.delivered, control.conversions, control.delivered)
    out.funnel.extend(funnel(c))
    for blob in c.answers:
        for answer in pb.ReportInteractionRequest.FromString(blob).answers:
            keys = list(answer.choices) or ([str(answer.rating)] if answer.rating else ["text"])
            for key in keys:
                out.survey_answers[f"{answer.question_id}/{key}"] += 1
    return out


def funnel(c: VariantCounts) -> list[pb.FunnelStep]:
    """sent → delivered → impression → click → conversion, each with its share of the step
    before (sent: of itself)."""
    steps = [(pb.FUNNEL_STAGE_SENT, c.sent), (pb.FUNNEL_STAGE_DELIVERED, c.delivered),
             (pb.FUNNEL_STAGE_IMPRESSION, c.impressions), (pb.FUNNEL_STAGE_CLICK, sum(c.clicks_by_button.values())),
             (pb.FUNNEL_STAGE_CONVERSION, c.conversions)]
    out, before = [], c.sent
    for stage, count in steps:
        out.append(pb.FunnelStep(stage=stage, count=count, rate=_rate(count, before)))
        before = count
    return out


def campaign_stats(counts: list[VariantCounts]) -> list[pb.VariantStats]:
    control = next((c for c in counts if c.control), None)
    return [variant_stats(c, control) for c in counts]


def daily_stats(days: list[date], rows: dict[date, tuple[list[MessageRow], list[InteractionRow]]],
                totals: list[VariantCounts]) -> list[pb.DailyStats]:
    """One bucket per day of `days`, each with a row for every row of the totals, in their
    order (zeros on a day without traffic)."""
    variant_ids = [c.variant_id for c in totals if not c.control]
    has_control = any(c.control for c in totals)
    out = []
    for day in days:
        messages, interactions = rows.get(day, ([], []))
        counts = variant_counts(messages, interactions, variant_ids, has_control)
        out.append(pb.DailyStats(date=day.isoformat(), variants=campaign_stats(counts)))
    return out
