"""The segment language, evaluated for one user at a fixed instant."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2
from hypothesis import given
from hypothesis import strategies as st

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from services.segmentation import rules
from services.segmentation.profile import DayCount, Profile

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
A = pb.AttributeOperator


def days(n: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=n * 86400)


def performed(name: str, *day_counts: tuple[int, int]) -> dict[str, list[DayCount]]:
    """(days ago, count) pairs -> aggregates, each event at noon UTC."""
    out = []
    for ago, count in day_counts:
        at = NOW - timedelta(days=ago)
        out.append(DayCount(at.date(), count, at, at))
    return {name: out}


def user(**kw) -> Profile:
    return Profile(user_id=kw.pop("user_id", "u1"), known=True, **kw)


def ev(name, op, count=0, window=None, d=0) -> pb.Rule:
    c = pb.EventCondition(name=name, operator=op, count=count, days=d)
    if window is not None:
        c.window.CopyFrom(days(window))
    return pb.Rule(event=c)


def attr(name, op, **value) -> pb.Rule:
    return pb.Rule(attribute=pb.AttributeCondition(name=name, operator=op,
                                                   value=common_pb2.AttributeValue(**value)))


def check(rule: pb.Rule, profile: Profile, segments=None) -> bool:
    assert rules.validate(rule) == [], rules.validate(rule)
    return rules.evaluate(rule, profile, NOW, rules.resolver(segments or {}, profile, NOW))


class TestEventConditions:
    def test_at_least_within_window_counts_whole_days_today_included(self):
        p = user(events=performed("purchase", (0, 1), (6, 1), (7, 5)))
        assert check(ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 2, window=7), p)
        assert not check(ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 3, window=7), p)
        assert check(ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 7, window=8), p)

    def test_ever_at_most_exactly(self):
        p = user(events=performed("open", (1, 2), (40, 1)))
        assert check(ev("open", pb.EVENT_OPERATOR_EXACTLY, 3), p)
        assert check(ev("open", pb.EVENT_OPERATOR_AT_MOST, 3), p)
        assert not check(ev("open", pb.EVENT_OPERATOR_AT_MOST, 2), p)
        assert check(ev("open", pb.EVENT_OPERATOR_AT_MOST, 0, window=1), p)

    def test_never_and_last_performed(self):
        p = user(events=performed("open", (10, 1)))
        assert check(ev("signup", pb.EVENT_OPERATOR_NEVER), p)
        assert not check(ev("open", pb.EVENT_OPERATOR_NEVER), p)
        assert check(ev("open", pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=9), p)
        assert not check(ev("open", pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=10), p)
        assert not check(ev("signup", pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=1), p)

    def test_each_of_the_last_days(self):
        every_day = user(events=performed("open", *[(i, 1) for i in range(7)]))
        gap = user(events=performed("open", *[(i, 1) for i in range(7) if i != 3]))
        assert check(ev("open", pb.EVENT_OPERATOR_EACH_DAY, d=7), every_day)
        assert not check(ev("open", pb.EVENT_OPERATOR_EACH_DAY, d=7), gap)
        assert check(ev("open", pb.EVENT_OPERATOR_EACH_DAY, d=3), gap)


class TestAttributeConditions:
    p = user(attributes={"plan": "pro", "age": 41, "score": 2.5, "vip": True, "tags": ["a", "b"],
                         "joined": NOW - timedelta(days=3)})

    @pytest.mark.parametrize("rule, expected", [
        (attr("plan", A.ATTRIBUTE_OPERATOR_EQUALS, string_value="pro"), True),
        (attr("plan", A.ATTRIBUTE_OPERATOR_NOT_EQUALS, string_value="pro"), False),
        (attr("missing", A.ATTRIBUTE_OPERATOR_NOT_EQUALS, string_value="pro"), True),
        (attr("missing", A.ATTRIBUTE_OPERATOR_EQUALS, string_value="pro"), False),
        (attr("age", A.ATTRIBUTE_OPERATOR_GREATER, int_value=40), True),
        (attr("age", A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL, double_value=40.5), False),
        (attr("score", A.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL, int_value=2), True),
        (attr("vip", A.ATTRIBUTE_OPERATOR_EQUALS, bool_value=True), True),
        (attr("vip", A.ATTRIBUTE_OPERATOR_EQUALS, int_value=1), False),
        (attr("tags", A.ATTRIBUTE_OPERATOR_CONTAINS, string_value="b"), True),
        (attr("plan", A.ATTRIBUTE_OPERATOR_STARTS_WITH, string_value="pr"), True),
        (pb.Rule(attribute=pb.AttributeCondition(name="plan", operator=A.ATTRIBUTE_OPERATOR_EXISTS)), True),
        (pb.Rule(attribute=pb.AttributeCondition(name="nope", operator=A.ATTRIBUTE_OPERATOR_IS_EMPTY)), True),
        (pb.Rule(attribute=pb.AttributeCondition(name="joined", operator=A.ATTRIBUTE_OPERATOR_WITHIN_LAST,
                                                 duration=days(3))), True),
        (pb.Rule(attribute=pb.AttributeCondition(name="joined", operator=A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO,
                                                 duration=days(2))), True),
        (pb.Rule(attribute=pb.AttributeCondition(
            name="plan", operator=A.ATTRIBUTE_OPERATOR_IN,
            values=[common_pb2.AttributeValue(string_value="free"), common_pb2.AttributeValue(string_value="pro")])),
         True),
    ])
    def test_operators(self, rule, expected):
        assert check(rule, self.p) is expected


class TestBuiltIns:
    def test_inactive_is_decided_by_the_passage_of_time(self):
        p = user(last_seen=NOW - timedelta(days=30, seconds=1))
        rule = pb.Rule(inactive=pb.InactiveCondition(duration=days(30)))
        assert check(rule, p)
        assert not check(rule, user(last_seen=NOW - timedelta(days=29)))

    def test_platform_and_app_version(self):
        p = user(platforms=frozenset({common_pb2.PLATFORM_IOS}), app_version="4.10.0")
        assert check(pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_IOS])), p)
        assert not check(pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_WEB])), p)
        # Versions compare as numbers, not strings: 4.10 is after 4.9.
        assert check(pb.Rule(app_version=pb.AppVersionCondition(
            operator=A.ATTRIBUTE_OPERATOR_GREATER, version="4.9")), p)

    @given(st.text(min_size=1, max_size=20))
    def test_random_bucket_is_stable_and_in_range(self, user_id):
        b = rules.bucket("salt", user_id)
        assert 0 <= b < 100 and b == rules.bucket("salt", user_id)

    def test_random_bucket_splits_evenly(self):
        rule = pb.Rule(random_bucket=pb.RandomBucketCondition(from_percent=0, to_percent=30, salt="s"))
        share = sum(check(rule, user(user_id=f"user-{i}")) for i in range(5000)) / 5000
        assert 0.27 < share < 0.33

    def test_groups_and_segment_membership(self):
        signed_up = ev("signup", pb.EVENT_OPERATOR_AT_LEAST, 1)
        segments = {"seg_s": signed_up}
        p = user(events=performed("signup", (0, 1)))
        not_member = pb.Rule(segment=pb.SegmentMembershipCondition(segment_id="seg_s", negate=True))
        both = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_AND, rules=[
            pb.Rule(segment=pb.SegmentMembershipCondition(segment_id="seg_s")),
            pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_NOT, rules=[ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 1)])),
        ]))
        assert check(both, p, segments)
        assert not check(not_member, p, segments)
        assert rules.memberships({"seg_s": signed_up, "seg_both": both}, p, NOW) == ["seg_both", "seg_s"]


class TestValidation:
    def test_fields_are_named(self):
        rule = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR, rules=[
            pb.Rule(attribute=pb.AttributeCondition(name="", operator=A.ATTRIBUTE_OPERATOR_GREATER)),
            pb.Rule(),
            pb.Rule(random_bucket=pb.RandomBucketCondition(from_percent=50, to_percent=20)),
        ]))
        assert {v.field for v in rules.validate(rule)} == {
            "rule.group.rules[0].attribute.name",
            "rule.group.rules[0].attribute.value",
            "rule.group.rules[1]",
            "rule.group.rules[2].random_bucket",
        }

    def test_cycles_are_found(self):
        assert rules.find_cycle("a", {"a": {"b"}, "b": {"c"}, "c": {"a"}})
        assert not rules.find_cycle("a", {"a": {"b"}, "b": {"c"}, "c": set()})
