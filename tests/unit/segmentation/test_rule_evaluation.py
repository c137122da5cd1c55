"""The segment language evaluated for one user at a fixed instant, and when its answers
change by the passage of time alone."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2, struct_pb2

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.protoconv import to_timestamp
from services.segmentation.model import Counter, Profile
from services.segmentation.rule_evaluation import compile_rule, evaluate, memberships, next_change, resolver
from services.segmentation.rule_tree import counter_key
from services.segmentation.rule_validation import validate
from tests.unit.segmentation.builders import attr, days, ev

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
A = pb.AttributeOperator


def performed(name: str, *day_counts: tuple[int, int]) -> dict[str, Counter]:
    """(days ago, count) pairs -> the counter of `name`, each event at noon UTC."""
    times = [NOW - timedelta(days=ago) for ago, _ in day_counts]
    days = {(NOW - timedelta(days=ago)).date(): count for ago, count in day_counts}
    return {name: Counter(sum(days.values()), min(times), max(times), days)}


def user(**kw) -> Profile:
    return Profile(user_id=kw.pop("user_id", "u1"), known=True, **kw)


def check(rule: pb.Rule, profile: Profile, segments=None) -> bool:
    assert validate(rule) == [], validate(rule)
    nodes = {sid: compile_rule(r) for sid, r in (segments or {}).items()}
    return evaluate(rule, profile, NOW, resolver(nodes, profile, NOW))


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
        nodes = {"seg_s": compile_rule(signed_up), "seg_both": compile_rule(both)}
        assert memberships(nodes, p, NOW)[0] == ["seg_both", "seg_s"]


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
        assert evaluate(seven, p, datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=timezone.utc),
                              lambda _s: False)
        assert not evaluate(seven, p, datetime(2026, 11, 26, tzinfo=timezone.utc), lambda _s: False)

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
        assert evaluate(rule, p, NOW + timedelta(microseconds=1), lambda _s: False)

    def test_property_filtered_conditions_read_their_own_counter(self):
        filtered = pb.EventCondition(name="buy", operator=pb.EVENT_OPERATOR_AT_LEAST, count=1, property_filters=[
            common_pb2.PropertyFilter(name="v", operator=A.ATTRIBUTE_OPERATOR_GREATER, value=struct_pb2.Value(number_value=9))])
        key = counter_key(filtered)
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


# ---------------------------------------------------------------- when an answer changes by time
# When memberships change by the passage of time alone: each condition's next change, and a
# user's valid_until over all of an app's segments.

TODAY = NOW.date()
TICK = timedelta(microseconds=1)


def d(n: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(n * 86400))


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def counter(*day_counts: tuple[int, int]) -> Counter:
    """(days ago, count); negative days ago are days ahead (clock skew)."""
    days = {TODAY - timedelta(days=ago): n for ago, n in day_counts}
    times = [midnight(day) + timedelta(hours=1) for day in days]
    return Counter(sum(days.values()), min(times), max(times), days)


def window(op, count=0, w=None, **kw) -> pb.Rule:
    c = pb.EventCondition(name="open", operator=op, count=count, **kw)
    if w is not None:
        c.window.CopyFrom(d(w))
    return pb.Rule(event=c)


def change(rule: pb.Rule, profile: Profile, now: datetime = NOW):
    return next_change(rule, profile, now)


def holds(rule: pb.Rule, profile: Profile, at: datetime) -> bool:
    return evaluate(rule, profile, at, lambda _s: False)


def test_inactivity_flips_one_tick_after_the_duration():
    seen = NOW - timedelta(days=3)
    p = Profile(user_id="u", known=True, last_seen=seen)
    rule = pb.Rule(inactive=pb.InactiveCondition(duration=d(7)))
    flip = seen + timedelta(days=7) + TICK
    assert change(rule, p) == flip
    assert not holds(rule, p, flip - TICK) and holds(rule, p, flip)
    assert change(rule, p, flip) is None  # inactive for good, until the user comes back


def test_attribute_ago_conditions_flip_at_their_boundary():
    joined = NOW - timedelta(hours=5)
    p = Profile(user_id="u", known=True, attributes={"joined": joined})
    within = pb.Rule(attribute=pb.AttributeCondition(name="joined", operator=A.ATTRIBUTE_OPERATOR_WITHIN_LAST,
                                                     duration=d(1)))
    flip = joined + timedelta(days=1) + TICK
    assert change(within, p) == flip
    assert holds(within, p, flip - TICK) and not holds(within, p, flip)
    before = pb.Rule(attribute=pb.AttributeCondition(name="joined", operator=A.ATTRIBUTE_OPERATOR_BEFORE,
                                                     value=common_pb2.AttributeValue(string_value="x")))
    assert change(before, p) is None  # a fixed instant does not move


def test_a_window_changes_when_its_last_day_with_events_leaves_it():
    p = Profile(user_id="u", known=True, counters={"open": counter((2, 1), (5, 2))})
    at_least_3 = window(pb.EVENT_OPERATOR_AT_LEAST, 3, 7)
    # 7-day window: day -5 leaves at the midnight 2 days from now; the sum drops to 1 then.
    assert change(at_least_3, p) == midnight(TODAY + timedelta(days=2))
    at_least_1 = window(pb.EVENT_OPERATOR_AT_LEAST, 1, 7)
    assert change(at_least_1, p) == midnight(TODAY + timedelta(days=5))
    at_most_0 = window(pb.EVENT_OPERATOR_AT_MOST, 0, 3)  # day -2 is in a 3-day window until tomorrow's end
    assert change(at_most_0, p) == midnight(TODAY + timedelta(days=1))
    assert change(window(pb.EVENT_OPERATOR_AT_LEAST, 1), p) is None  # all time: never by itself
    # Verified against evaluation at every midnight of the next ten days.
    for rule in (at_least_3, at_least_1, at_most_0):
        flip = change(rule, p)
        for k in range(1, 11):
            instant = midnight(TODAY + timedelta(days=k))
            assert holds(rule, p, instant) == (holds(rule, p, NOW) if instant < flip else holds(rule, p, flip))


def test_each_day_breaks_at_the_next_midnight_and_events_ahead_are_counted():
    streak = Profile(user_id="u", known=True, counters={"open": counter((0, 1), (1, 1), (2, 1))})
    rule = window(pb.EVENT_OPERATOR_EACH_DAY, days=3)
    assert holds(rule, streak, NOW)
    assert change(rule, streak) == midnight(TODAY + timedelta(days=1))
    ahead = Profile(user_id="u", known=True, counters={"open": counter((0, 1), (1, 1), (2, 1), (-1, 1))})
    assert change(rule, ahead) == midnight(TODAY + timedelta(days=2))
    broken = Profile(user_id="u", known=True, counters={"open": counter((0, 1), (2, 1))})
    assert not holds(rule, broken, NOW) and change(rule, broken) is None


def test_last_performed_flips_one_tick_after():
    p = Profile(user_id="u", known=True, counters={"open": counter((1, 1))})
    rule = pb.Rule(event=pb.EventCondition(name="open", operator=pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO,
                                           window=d(3)))
    flip = p.counters["open"].last_at + timedelta(days=3) + TICK
    assert change(rule, p) == flip and holds(rule, p, flip) and not holds(rule, p, flip - TICK)


def test_valid_until_is_the_earliest_change_over_all_segments():
    p = Profile(user_id="u", known=True, last_seen=NOW - timedelta(days=1), counters={"open": counter((3, 1))})
    segments = {
        "inactive": compile_rule(pb.Rule(inactive=pb.InactiveCondition(duration=d(30)))),
        "weekly": compile_rule(window(pb.EVENT_OPERATOR_AT_LEAST, 1, 7)),
        "static": compile_rule(pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_IOS]))),
    }
    inside, valid_until = memberships(segments, p, NOW)
    assert inside == ["weekly"]
    assert valid_until == midnight(TODAY + timedelta(days=4))
    assert memberships({"static": segments["static"]}, p, NOW)[1] is None
