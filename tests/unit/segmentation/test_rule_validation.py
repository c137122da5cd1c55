"""Validation of segment rules: each problem names its field."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from services.segmentation.rule_validation import MAX_INLINED, find_cycle, reference_problems, validate
from tests.unit.segmentation.builders import attr, days, ev, member

A = pb.AttributeOperator


class TestValidation:
    def test_fields_are_named(self):
        rule = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR, rules=[
            pb.Rule(attribute=pb.AttributeCondition(name="", operator=A.ATTRIBUTE_OPERATOR_GREATER)),
            pb.Rule(),
            pb.Rule(random_bucket=pb.RandomBucketCondition(from_percent=50, to_percent=20)),
        ]))
        assert {v.field for v in validate(rule)} == {
            "rule.group.rules[0].attribute.name",
            "rule.group.rules[0].attribute.value",
            "rule.group.rules[1]",
            "rule.group.rules[2].random_bucket",
        }

    def test_cycles_are_found(self):
        assert find_cycle("a", {"a": {"b"}, "b": {"c"}, "c": {"a"}})
        assert not find_cycle("a", {"a": {"b"}, "b": {"c"}, "c": set()})


class TestMoreValidation:
    @pytest.mark.parametrize("rule, field", [
        (ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1, window=400), "rule.event.window"),
        (pb.Rule(event=pb.EventCondition(name="open", operator=pb.EVENT_OPERATOR_EACH_DAY, days=3,
                                         window=days(3))), "rule.event.window"),
        (pb.Rule(event=pb.EventCondition(name="open", operator=pb.EVENT_OPERATOR_AT_LEAST, count=1, days=3)),
         "rule.event.days"),
        (pb.Rule(event=pb.EventCondition(name="open", operator=pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO)),
         "rule.event.window"),
        (attr("x", A.ATTRIBUTE_OPERATOR_GREATER, bool_value=True), "rule.attribute.value"),
        (attr("x", A.ATTRIBUTE_OPERATOR_EQUALS, double_value=float("nan")), "rule.attribute.value"),
        (attr("x", A.ATTRIBUTE_OPERATOR_STARTS_WITH, int_value=1), "rule.attribute.value"),
        (pb.Rule(attribute=pb.AttributeCondition(name="x", operator=A.ATTRIBUTE_OPERATOR_IN)), "rule.attribute.values"),
        (pb.Rule(inactive=pb.InactiveCondition()), "rule.inactive.duration"),
        (pb.Rule(platform=pb.PlatformCondition()), "rule.platform.platforms"),
        (pb.Rule(app_version=pb.AppVersionCondition(operator=A.ATTRIBUTE_OPERATOR_CONTAINS, version="1")),
         "rule.app_version.operator"),
        (pb.Rule(segment=pb.SegmentMembershipCondition()), "rule.segment.segment_id"),
        (pb.Rule(group=pb.Group(rules=[ev("a", pb.EVENT_OPERATOR_NEVER)])), "rule.group.operator"),
        (pb.Rule(event=pb.EventCondition(name="buy", operator=pb.EVENT_OPERATOR_NEVER, property_filters=[
            common_pb2.PropertyFilter(name="v", operator=A.ATTRIBUTE_OPERATOR_IN,
                              value=struct_pb2.Value(string_value="x"))])), "rule.event.property_filters[0].value"),
        (pb.Rule(event=pb.EventCondition(name="buy", operator=pb.EVENT_OPERATOR_NEVER, property_filters=[
            common_pb2.PropertyFilter(operator=A.ATTRIBUTE_OPERATOR_EXISTS)])), "rule.event.property_filters[0].name"),
    ])
    def test_each_problem_names_its_field(self, rule, field):
        assert {v.field for v in validate(rule)} == {field}

    def test_deep_or_huge_rules_are_refused(self):
        rule = ev("a", pb.EVENT_OPERATOR_NEVER)
        for _ in range(12):
            rule = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_NOT, rules=[rule]))
        assert any("deeper" in v.description for v in validate(rule))
        wide = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR,
                                      rules=[ev("a", pb.EVENT_OPERATOR_NEVER)] * 250))
        assert [v.field for v in validate(wide)] == ["rule"]


class TestReferences:
    saved = {"a": ev("open", pb.EVENT_OPERATOR_NEVER), "b": member("a")}

    def test_a_reference_names_a_saved_segment(self):
        assert reference_problems(member("b"), None, self.saved) == []
        either = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR, rules=[member("a"), member("zz")]))
        problems = reference_problems(either, None, self.saved)
        assert [v.field for v in problems] == ["rule.group.rules[1].segment.segment_id"]
        assert "unknown segment 'zz'" in problems[0].description

    def test_a_segment_cannot_lead_back_to_itself(self):
        for rule in (member("a"), member("b")):  # directly, and through b, which refers to a
            problems = reference_problems(rule, "a", self.saved)
            assert [v.field for v in problems] == ["rule.segment.segment_id"]
            assert "cycle" in problems[0].description

    def test_the_rule_with_its_references_inlined_stays_small(self):
        wide = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR, rules=[ev("a", pb.EVENT_OPERATOR_NEVER)] * 199))
        saved = {"wide": wide}  # 200 conditions; each reference to it inlines 201

        def referring(times: int) -> pb.Rule:
            return pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR, rules=[member("wide")] * times))

        assert reference_problems(referring(4), None, saved) == []  # 1 + 4 * 201 = 805
        problems = reference_problems(referring(5), None, saved)  # 1 + 5 * 201 = 1006
        assert [v.field for v in problems] == ["rule"] and f"at most {MAX_INLINED}" in problems[0].description

