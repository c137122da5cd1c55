"""Campaign statistics from raw counts: what each variant's counts add up to, its rates,
its uplift over control with a 95% interval, and survey answers tallied per question."""

from __future__ import annotations

import math

import pytest

from nudge.delivery.v1 import delivery_service_pb2 as pb
from services.delivery.model import InteractionRow, VariantRow
from services.delivery.stats import campaign_stats, uplift, variant_counts


def answers(*items: pb.SurveyAnswer) -> bytes:
    return pb.ReportInteractionRequest(answers=items).SerializeToString()


def test_interactions_add_up_per_variant_by_type_and_button():
    counts = variant_counts(
        [VariantRow("A", False, sent=10, delivered=8, conversions=2)],
        [InteractionRow("A", pb.INTERACTION_TYPE_IMPRESSION, "", 6),
         InteractionRow("A", pb.INTERACTION_TYPE_CLICK, "buy", 3),
         InteractionRow("A", pb.INTERACTION_TYPE_CLICK, "later", 1),
         InteractionRow("A", pb.INTERACTION_TYPE_DISMISS, "", 2),
         # A variant whose messages were all created outside the window still shows up.
         InteractionRow("B", pb.INTERACTION_TYPE_IMPRESSION, "", 1)])
    a, b = counts
    assert (a.variant_id, a.sent, a.delivered, a.conversions) == ("A", 10, 8, 2)
    assert (a.impressions, a.dismissals, a.clicks_by_button) == (6, 2, {"buy": 3, "later": 1})
    assert (b.variant_id, b.sent, b.impressions) == ("B", 0, 1)


def test_rates_and_uplift_over_control():
    counts = variant_counts(
        [VariantRow("", True, sent=0, delivered=100, conversions=10),
         VariantRow("A", False, sent=100, delivered=100, conversions=20)],
        [InteractionRow("A", pb.INTERACTION_TYPE_IMPRESSION, "", 50),
         InteractionRow("A", pb.INTERACTION_TYPE_CLICK, "go", 5)])
    control, a = campaign_stats(counts)
    assert control.control and control.conversion_rate == pytest.approx(0.1)
    assert control.uplift == 0.0  # control has no uplift over itself
    assert (a.impression_rate, a.click_rate, a.conversion_rate) == (0.5, 0.1, 0.2)
    half = 1.959963984540054 * math.sqrt(0.2 * 0.8 / 100 + 0.1 * 0.9 / 100)
    assert a.uplift == pytest.approx(0.1)
    assert (a.uplift_ci_low, a.uplift_ci_high) == (pytest.approx(0.1 - half), pytest.approx(0.1 + half))


def test_nothing_delivered_gives_zero_rates_not_an_error():
    (a,) = campaign_stats(variant_counts([VariantRow("A", False, 3, 0, 0)], []))
    assert (a.impression_rate, a.click_rate, a.conversion_rate) == (0.0, 0.0, 0.0)
    assert uplift(1, 0, 1, 10) == (0.0, 0.0, 0.0) == uplift(1, 10, 0, 0)


def test_survey_answers_are_tallied_per_question_and_choice():
    blobs = (answers(pb.SurveyAnswer(question_id="q1", choices=["red", "blue"]),
                     pb.SurveyAnswer(question_id="q2", rating=4)),
             answers(pb.SurveyAnswer(question_id="q1", choices=["red"]),
                     pb.SurveyAnswer(question_id="q3", text="nice")))
    (a,) = campaign_stats(variant_counts(
        [VariantRow("A", False, 2, 2, 0)],
        [InteractionRow("A", pb.INTERACTION_TYPE_SURVEY_ANSWER, "", 2, blobs)]))
    assert dict(a.survey_answers) == {"q1/red": 2, "q1/blue": 1, "q2/4": 1, "q3/text": 1}
