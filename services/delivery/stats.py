"""Campaign statistics from raw counts: pure arithmetic."""

from __future__ import annotations

from nudge.delivery.v1 import delivery_service_pb2 as pb
from services.delivery.store import VariantCounts


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def variant_stats(c: VariantCounts) -> pb.VariantStats:
    out = pb.VariantStats(
        variant_id=c.variant_id,
        sent=c.sent,
        delivered=c.delivered,
        impressions=c.impressions,
        dismissals=c.dismissals,
        clicks_by_button=c.clicks_by_button,
        impression_rate=_rate(c.impressions, c.delivered),
        click_rate=_rate(sum(c.clicks_by_button.values()), c.impressions),
    )
    for blob in c.answers:
        for answer in pb.ReportInteractionRequest.FromString(blob).answers:
            keys = list(answer.choices) or ([str(answer.rating)] if answer.rating else ["text"])
            for key in keys:
                out.survey_answers[f"{answer.question_id}/{key}"] += 1
    return out
