"""When memberships change by the passage of time alone: each condition's next change, and
a user's valid_until over all of an app's segments."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from services.segmentation import rules
from services.segmentation.profile import Counter, Profile

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
TICK = timedelta(microseconds=1)
A = pb.AttributeOperator


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
    return rules.next_change(rule, profile, now)


def holds(rule: pb.Rule, profile: Profile, at: datetime) -> bool:
    return rules.evaluate(rule, profile, at, lambda _s: False)


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
        "inactive": rules.compile_rule(pb.Rule(inactive=pb.InactiveCondition(duration=d(30)))),
        "weekly": rules.compile_rule(window(pb.EVENT_OPERATOR_AT_LEAST, 1, 7)),
        "static": rules.compile_rule(pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_IOS]))),
    }
    inside, valid_until = rules.memberships(segments, p, NOW)
    assert inside == ["weekly"]
    assert valid_until == midnight(TODAY + timedelta(days=4))
    assert rules.memberships({"static": segments["static"]}, p, NOW)[1] is None
