"""What a rule reads and refers to, shared by validation, evaluation and the SQL compiler."""

from __future__ import annotations

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from services.segmentation.rule_tree import dependents, event_conditions, window_days
from tests.unit.segmentation.builders import days, ev, member


def test_a_change_reaches_every_segment_that_refers_to_it_directly_or_not():
    segments = {"a": ev("open", pb.EVENT_OPERATOR_NEVER), "b": member("a"), "c": member("b", negate=True),
                "d": ev("buy", pb.EVENT_OPERATOR_NEVER)}
    assert dependents(segments, "a") == ["a", "b", "c"]
    assert dependents(segments, "c") == ["c"]
    assert dependents(segments, "d") == ["d"]


def test_how_many_days_a_condition_looks_back():
    assert window_days(ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1, window=7).event) == 7
    assert window_days(ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1).event) == 0  # all time
    assert window_days(ev("open", pb.EVENT_OPERATOR_EACH_DAY, d=3).event) == 3
    last = pb.EventCondition(name="open", operator=pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=days(30))
    assert window_days(last) == 0  # reads the last time only, never day counts


def test_event_conditions_of_a_tree_but_not_of_the_segments_it_refers_to():
    rule = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_AND, rules=[
        ev("open", pb.EVENT_OPERATOR_NEVER), member("a"),
        pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_NOT, rules=[ev("buy", pb.EVENT_OPERATOR_AT_LEAST, 2)]))]))
    assert [c.name for c in event_conditions(rule)] == ["open", "buy"]
