"""Campaign statistics from raw counts: what each variant's counts add up to (sent =
delivered + expired + dropped + waiting), its rates, its uplift over control with a 95%
interval, a zero row per variant without traffic, and survey answers tallied per question."""

from __future__ import annotations

import math

import pytest

from nudge.delivery.v1 import delivery_service_pb2 as pb
from hypothesis import given
from hypothesis import strategies as st

from services.delivery.model import CONTROL, InteractionRow, MessageRow, VariantCounts
from services.delivery.stats import DROP_REASONS, campaign_stats, funnel, uplift, variant_counts


def answers(*items: pb.SurveyAnswer) -> bytes:
    return pb.ReportInteractionRequest(answers=items).SerializeToString()


def test_interactions_add_up_per_variant_by_type_and_button():
    counts = variant_counts(
        [MessageRow("A", "delivered", 8, conversions=2), MessageRow("A", "pending", 2)],
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
        [MessageRow(CONTROL, "control", 100, conversions=10),
         MessageRow("A", "delivered", 100, conversions=20)],
        [InteractionRow("A", pb.INTERACTION_TYPE_IMPRESSION, "", 50),
         InteractionRow("A", pb.INTERACTION_TYPE_CLICK, "go", 5)])
    a, control = campaign_stats(counts)
    assert control.control and control.conversion_rate == pytest.approx(0.1)
    assert control.uplift == 0.0  # control has no uplift over itself
    assert (a.impression_rate, a.click_rate, a.conversion_rate) == (0.5, 0.1, 0.2)
    half = 1.959963984540054 * math.sqrt(0.2 * 0.8 / 100 + 0.1 * 0.9 / 100)
    assert a.uplift == pytest.approx(0.1)
    assert (a.uplift_ci_low, a.uplift_ci_high) == (pytest.approx(0.1 - half), pytest.approx(0.1 + half))


def test_nothing_delivered_gives_zero_rates_not_an_error():
    (a,) = campaign_stats(variant_counts([MessageRow("A", "pending", 3)], []))
    assert (a.impression_rate, a.click_rate, a.conversion_rate) == (0.0, 0.0, 0.0)
    assert uplift(1, 0, 1, 10) == (0.0, 0.0, 0.0) == uplift(1, 10, 0, 0)


def test_survey_answers_are_tallied_per_question_and_choice():
    blobs = (answers(pb.SurveyAnswer(question_id="q1", choices=["red", "blue"]),
                     pb.SurveyAnswer(question_id="q2", rating=4)),
             answers(pb.SurveyAnswer(question_id="q1", choices=["red"]),
                     pb.SurveyAnswer(question_id="q3", text="nice")))
    (a,) = campaign_stats(variant_counts(
        [MessageRow("A", "delivered", 2)],
        [InteractionRow("A", pb.INTERACTION_TYPE_SURVEY_ANSWER, "", 2, blobs)]))
    assert dict(a.survey_answers) == {"q1/red": 2, "q1/blue": 1, "q2/4": 1, "q3/text": 1}


def test_every_send_is_counted_once_and_the_counts_add_up():
    (a, control) = campaign_stats(variant_counts(
        [MessageRow("A", "delivered", 5), MessageRow("A", "pending", 2), MessageRow("A", "expired", 3),
         MessageRow("A", "dropped", 4, drop_reason="CAPPED"), MessageRow("A", "dropped", 1, drop_reason="RENDER_FAILED"),
         # A reason this build does not know still counts, as OTHER.
         MessageRow("A", "dropped", 1, drop_reason="SOMETHING_NEW"),
         MessageRow(CONTROL, "control", 6), MessageRow(CONTROL, "dropped", 2, drop_reason="NOT_IN_AUDIENCE")],
        [], ["A"], has_control=True))
    assert (a.sent, a.delivered, a.waiting, a.expired, a.dropped) == (16, 5, 2, 3, 6)
    assert dict(a.dropped_by_reason) == {**dict.fromkeys(DROP_REASONS, 0), "CAPPED": 4, "RENDER_FAILED": 1,
                                         "OTHER": 1}
    assert a.delivery_rate == 5 / 16
    assert control.control and (control.sent, control.delivered, control.dropped) == (8, 6, 2)


@given(st.lists(st.tuples(st.sampled_from(["A", "B", CONTROL]),
                          st.sampled_from(["delivered", "control", "pending", "expired", "dropped"]),
                          st.sampled_from(DROP_REASONS + ("",)), st.integers(0, 1000))))
def test_sent_is_delivered_plus_expired_plus_dropped_plus_waiting(rows):
    stats = campaign_stats(variant_counts([MessageRow(v, s, n, drop_reason=r) for v, s, r, n in rows], []))
    for v in stats:
        assert v.sent == v.delivered + v.expired + v.dropped + v.waiting
        assert v.dropped == sum(v.dropped_by_reason.values())
    assert sum(v.sent for v in stats) == sum(n for *_, n in rows)


def test_a_campaign_without_traffic_has_a_zero_row_per_variant_and_control():
    stats = campaign_stats(variant_counts([], [], ["A", "B"], has_control=True))
    assert [(v.variant_id, v.control) for v in stats] == [("A", False), ("B", False), (CONTROL, True)]
    assert all(v.sent == v.delivered == v.dropped == 0 and v.delivery_rate == 0.0 for v in stats)
    assert set(stats[0].dropped_by_reason) == set(DROP_REASONS)
    # No control group: no control row; a variant removed since keeps its row after the current ones.
    stats = campaign_stats(variant_counts([MessageRow("old", "delivered", 1)], [], ["A"]))
    assert [v.variant_id for v in stats] == ["A", "old"]


def test_the_funnel_reads_the_counts_with_each_steps_share_of_the_one_before():
    counts = VariantCounts("A", sent=10, delivered=8, impressions=4, conversions=3, clicks_by_button={"x": 1, "y": 1})
    steps = funnel(counts)
    assert [(s.stage, s.count) for s in steps] == [
        (pb.FUNNEL_STAGE_SENT, 10), (pb.FUNNEL_STAGE_DELIVERED, 8), (pb.FUNNEL_STAGE_IMPRESSION, 4),
        (pb.FUNNEL_STAGE_CLICK, 2), (pb.FUNNEL_STAGE_CONVERSION, 3)]
    assert [s.rate for s in steps] == [1.0, 0.8, 0.5, 0.5, 1.5]
    assert [s.rate for s in funnel(VariantCounts("B"))] == [0.0] * 5
