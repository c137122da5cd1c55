"""The segment language, evaluated for one user at a fixed instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.protoconv import to_timestamp
from services.segmentation import rules
from services.segmentation.profile import Counter, Profile

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
A = pb.AttributeOperator


def days(n: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=n * 86400)


def performed(name: str, *day_counts: tuple[int, int]) -> dict[str, Counter]:
    """(days ago, count) pairs -> the counter of `name`, each event at noon UTC."""
    times = [NOW - timedelta(days=ago) for ago, _ in day_counts]
    days = {(NOW - timedelta(days=ago)).date(): count for ago, count in day_counts}
    return {name: Counter(sum(days.values()), min(times), max(times), days)}


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
    nodes = {sid: rules.compile_rule(r) for sid, r in (segments or {}).items()}
    return rules.evaluate(rule, profile, NOW, rules.resolver(nodes, profile, NOW))


class TestEventConditions:
    def test_at_least_within_window_counts_whole_days_today_included(self):
        p = user(counters=performed("purchase", (0, 1), (6, 1), (7, 5)))
        assert check(ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 2, window=7), p)
        assert not check(ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 3, window=7), p)
        assert check(ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 7, window=8), p)

    def test_ever_at_most_exactly(self):
        p = user(counters=performed("open", (1, 2), (40, 1)))
        assert check(ev("open", pb.EVENT_OPERATOR_EXACTLY, 3), p)
        assert check(ev("open", pb.EVENT_OPERATOR_AT_MOST, 3), p)
        assert not check(ev("open", pb.EVENT_OPERATOR_AT_MOST, 2), p)
        assert check(ev("open", pb.EVENT_OPERATOR_AT_MOST, 0, window=1), p)

    def test_never_and_last_performed(self):
        p = user(counters=performed("open", (10, 1)))
        assert check(ev("signup", pb.EVENT_OPERATOR_NEVER), p)
        assert not check(ev("open", pb.EVENT_OPERATOR_NEVER), p)
        assert check(ev("open", pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=9), p)
        assert not check(ev("open", pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=10), p)
        assert not check(ev("signup", pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=1), p)

    def test_each_of_the_last_days(self):
        every_day = user(counters=performed("open", *[(i, 1) for i in range(7)]))
        gap = user(counters=performed("open", *[(i, 1) for i in range(7) if i != 3]))
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
        p = user(counters=performed("signup", (0, 1)))
        not_member = pb.Rule(segment=pb.SegmentMembershipCondition(segment_id="seg_s", negate=True))
        both = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_AND, rules=[
            pb.Rule(segment=pb.SegmentMembershipCondition(segment_id="seg_s")),
            pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_NOT, rules=[ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, 1)])),
        ]))
        assert check(both, p, segments)
        assert not check(not_member, p, segments)
        nodes = {"seg_s": rules.compile_rule(signed_up), "seg_both": rules.compile_rule(both)}
        assert rules.memberships(nodes, p, NOW)[0] == ["seg_both", "seg_s"]


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


class TestMoreAttributeConditions:
    p = user(attributes={"plan": "pro", "n": 3, "x": 2.5, "big": 2**60, "vip": False, "tags": ["a", "b"],
                         "empty": "", "none": [], "joined": NOW - timedelta(days=3)})

    @pytest.mark.parametrize("rule, expected", [
        # kinds never mix: "3" is not 3, false is not 0
        (attr("n", A.ATTRIBUTE_OPERATOR_EQUALS, string_value="3"), False),
        (attr("vip", A.ATTRIBUTE_OPERATOR_EQUALS, int_value=0), False),
        (attr("vip", A.ATTRIBUTE_OPERATOR_NOT_EQUALS, int_value=0), True),
        # ints exactly, other numbers as floats
        (attr("n", A.ATTRIBUTE_OPERATOR_EQUALS, double_value=3.0), True),
        (attr("big", A.ATTRIBUTE_OPERATOR_GREATER, int_value=2**60 - 1), True),
        (attr("x", A.ATTRIBUTE_OPERATOR_LESS, int_value=3), True),
        # strings by code point; time values compare as instants
        (attr("plan", A.ATTRIBUTE_OPERATOR_LESS, string_value="q"), True),
        (attr("plan", A.ATTRIBUTE_OPERATOR_GREATER, string_value="Zebra"), True),
        (attr("tags", A.ATTRIBUTE_OPERATOR_EQUALS, string_list_value=common_pb2.StringList(values=["a", "b"])), True),
        (attr("tags", A.ATTRIBUTE_OPERATOR_CONTAINS, string_value="c"), False),
        (attr("plan", A.ATTRIBUTE_OPERATOR_CONTAINS, string_value="r"), True),
        (attr("n", A.ATTRIBUTE_OPERATOR_STARTS_WITH, string_value="3"), False),
        (pb.Rule(attribute=pb.AttributeCondition(name="empty", operator=A.ATTRIBUTE_OPERATOR_IS_EMPTY)), True),
        (pb.Rule(attribute=pb.AttributeCondition(name="none", operator=A.ATTRIBUTE_OPERATOR_IS_EMPTY)), True),
        (pb.Rule(attribute=pb.AttributeCondition(name="vip", operator=A.ATTRIBUTE_OPERATOR_IS_EMPTY)), False),
        (pb.Rule(attribute=pb.AttributeCondition(name="empty", operator=A.ATTRIBUTE_OPERATOR_EXISTS)), True),
        (pb.Rule(attribute=pb.AttributeCondition(
            name="plan", operator=A.ATTRIBUTE_OPERATOR_NOT_IN,
            values=[common_pb2.AttributeValue(string_value="free")])), True),
        (pb.Rule(attribute=pb.AttributeCondition(
            name="missing", operator=A.ATTRIBUTE_OPERATOR_NOT_IN,
            values=[common_pb2.AttributeValue(string_value="free")])), True),
    ])
    def test_operators(self, rule, expected):
        assert check(rule, self.p) is expected

    def test_dates_before_after_and_ago_at_their_edges(self):
        joined = NOW - timedelta(days=3)
        p = user(attributes={"joined": joined, "name": "x"})

        def at(op, instant):
            return attr("joined", op, time_value=to_timestamp(instant))

        assert check(at(A.ATTRIBUTE_OPERATOR_BEFORE, joined + timedelta(microseconds=1)), p)
        assert not check(at(A.ATTRIBUTE_OPERATOR_BEFORE, joined), p)
        assert check(at(A.ATTRIBUTE_OPERATOR_AFTER, joined - timedelta(microseconds=1)), p)
        assert not check(at(A.ATTRIBUTE_OPERATOR_AFTER, joined), p)

        def ago(op, seconds):
            return pb.Rule(attribute=pb.AttributeCondition(name="joined", operator=op,
                                                           duration=duration_pb2.Duration(seconds=seconds)))

        three_days = 3 * 86400
        assert check(ago(A.ATTRIBUTE_OPERATOR_WITHIN_LAST, three_days), p)  # exactly 3 days ago: within
        assert not check(ago(A.ATTRIBUTE_OPERATOR_WITHIN_LAST, three_days - 1), p)
        assert not check(ago(A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO, three_days), p)
        assert check(ago(A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO, three_days - 1), p)
        # Not a time: no date condition holds.
        p2 = user(attributes={"joined": "yesterday"})
        assert not check(ago(A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO, 1), p2)
        assert not check(ago(A.ATTRIBUTE_OPERATOR_WITHIN_LAST, 10**9), p2)


class TestMoreEventConditions:
    def test_window_edges_are_utc_midnights(self):
        seven = ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1, window=7)
        first_second = datetime(2026, 11, 19, 0, 0, tzinfo=timezone.utc)  # 6 days before NOW's day
        p = user(counters={"open": Counter(1, first_second, first_second, {first_second.date(): 1})})
        assert check(seven, p)
        assert not check(ev("open", pb.EVENT_OPERATOR_AT_LEAST, 1, window=6), p)
        assert rules.evaluate(seven, p, datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=timezone.utc),
                              lambda _s: False)
        assert not rules.evaluate(seven, p, datetime(2026, 11, 26, tzinfo=timezone.utc), lambda _s: False)

    def test_never_within_a_window_and_at_most_zero(self):
        p = user(counters=performed("open", (10, 2)))
        assert check(ev("open", pb.EVENT_OPERATOR_NEVER, window=7), p)
        assert not check(ev("open", pb.EVENT_OPERATOR_NEVER, window=11), p)
        assert check(ev("open", pb.EVENT_OPERATOR_AT_MOST, 0, window=7), p)
        assert check(ev("open", pb.EVENT_OPERATOR_EXACTLY, 0, window=7), p)
        assert check(ev("never_done", pb.EVENT_OPERATOR_EXACTLY, 0), p)
        assert check(ev("never_done", pb.EVENT_OPERATOR_AT_LEAST, 0), p)

    def test_last_performed_edge_is_exact(self):
        at = NOW - timedelta(days=2)
        p = user(counters={"open": Counter(1, at, at, {at.date(): 1})})
        rule = pb.Rule(event=pb.EventCondition(name="open", operator=pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO,
                                               window=days(2)))
        assert not check(rule, p)
        assert rules.evaluate(rule, p, NOW + timedelta(microseconds=1), lambda _s: False)

    def test_property_filtered_conditions_read_their_own_counter(self):
        filtered = pb.EventCondition(name="buy", operator=pb.EVENT_OPERATOR_AT_LEAST, count=1, property_filters=[
            pb.PropertyFilter(name="v", operator=A.ATTRIBUTE_OPERATOR_GREATER, value=struct_pb2.Value(number_value=9))])
        key = rules.counter_key(filtered)
        assert key.startswith("buy#") and key != "buy"
        at = NOW
        p = user(counters={"buy": Counter(3, at, at, {at.date(): 3})})
        assert not check(pb.Rule(event=filtered), p)
        p.counters[key] = Counter(1, at, at, {at.date(): 1})
        assert check(pb.Rule(event=filtered), p)

    def test_unknown_users_have_nothing_and_are_not_inactive(self):
        nobody = Profile(user_id="x")
        assert not check(pb.Rule(inactive=pb.InactiveCondition(duration=days(1))), nobody)
        assert check(ev("open", pb.EVENT_OPERATOR_NEVER), nobody)
        assert check(pb.Rule(inactive=pb.InactiveCondition(duration=days(1))), user())  # known, never seen


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
            pb.PropertyFilter(name="v", operator=A.ATTRIBUTE_OPERATOR_IN,
                              value=struct_pb2.Value(string_value="x"))])), "rule.event.property_filters[0].value"),
        (pb.Rule(event=pb.EventCondition(name="buy", operator=pb.EVENT_OPERATOR_NEVER, property_filters=[
            pb.PropertyFilter(operator=A.ATTRIBUTE_OPERATOR_EXISTS)])), "rule.event.property_filters[0].name"),
    ])
    def test_each_problem_names_its_field(self, rule, field):
        assert {v.field for v in rules.validate(rule)} == {field}

    def test_deep_or_huge_rules_are_refused(self):
        rule = ev("a", pb.EVENT_OPERATOR_NEVER)
        for _ in range(12):
            rule = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_NOT, rules=[rule]))
        assert any("deeper" in v.description for v in rules.validate(rule))
        wide = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR,
                                      rules=[ev("a", pb.EVENT_OPERATOR_NEVER)] * 250))
        assert [v.field for v in rules.validate(wide)] == ["rule"]
