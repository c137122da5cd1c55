"""The segment language evaluated for one user (validation is in rule_validation, what
both share in rule_tree).

Pure functions over protos and plain data; the time is a parameter. This module is the
definition of what a rule means: the SQL compiler (sqlrules) must give the same answers
over the whole population, and a property-based test holds the two together.

Semantics worth knowing:
- Event windows count whole UTC calendar days, today included: "at least 3 within 7 days"
  counts the events of the last 7 days, today being one of them. Windows are whole days.
- A missing attribute fails every condition except NOT_EQUALS, NOT_IN and IS_EMPTY.
- Comparisons follow `nudgelib.compare`: kinds never mix, ints compare exactly, other numbers as
  floats, strings by code point.
- A user nobody has told us about has no attributes, no events and no platforms, and is
  not inactive. A known user never seen through an event is inactive.
- A NOT group is true when none of its children is.

Besides true or false, each condition says when its answer may next change by the passage
of time alone (`change`): that is how a user's `valid_until` is computed, and when the
sweeper re-evaluates the user.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib import compare, filters
from nudgelib.buckets import bucket
from nudgelib.protoconv import to_timedelta
from nudgelib.versions import parse_version
from services.segmentation.model import Counter, Profile
from services.segmentation.rule_tree import (
    AGO_OPS,
    DAY,
    ORDERING,
    attribute_value,
    counter_key,
    midnight,
    window_days,
)

TICK = timedelta(microseconds=1)

# segment id -> is the user a member (evaluated lazily, for membership conditions)
MembershipLookup = Callable[[str], bool]


def _after(instant: datetime, limit: timedelta, now: datetime) -> datetime | None:
    """The first instant > now at which `now - instant > limit` flips, if it still can."""
    try:
        boundary = instant + limit
        return boundary + TICK if boundary >= now else None
    except OverflowError:
        return None


@dataclass(frozen=True)
class At:
    """When a rule is evaluated, and how other segments' membership is looked up."""

    now: datetime
    member_of: MembershipLookup

    @property
    def today(self) -> date:
        return self.now.date()


class Node:
    def test(self, p: Profile, at: At) -> bool:
        raise NotImplementedError

    def change(self, p: Profile, at: At) -> datetime | None:
        """The first instant after `at.now` at which this condition's answer may differ,
        the user's data staying as it is; None when it cannot."""
        return None


@dataclass(frozen=True)
class Group(Node):
    operator: int
    children: tuple[Node, ...]

    def test(self, p: Profile, at: At) -> bool:
        if self.operator == pb.GROUP_OPERATOR_AND:
            return all(c.test(p, at) for c in self.children)
        if self.operator == pb.GROUP_OPERATOR_OR:
            return any(c.test(p, at) for c in self.children)
        return not any(c.test(p, at) for c in self.children)

    def change(self, p: Profile, at: At) -> datetime | None:
        found = [t for c in self.children if (t := c.change(p, at)) is not None]
        return min(found) if found else None


@dataclass(frozen=True)
class Attribute(Node):
    name: str
    operator: int
    value: Any
    values: tuple[Any, ...]
    limit: timedelta

    def test(self, p: Profile, at: At) -> bool:
        present = self.name in p.attributes
        actual = p.attributes.get(self.name)
        op = self.operator
        if op == pb.ATTRIBUTE_OPERATOR_EXISTS:
            return present
        if op == pb.ATTRIBUTE_OPERATOR_IS_EMPTY:
            return compare.is_empty(present, actual)
        if not present:
            return op in (pb.ATTRIBUTE_OPERATOR_NOT_EQUALS, pb.ATTRIBUTE_OPERATOR_NOT_IN)
        listed = op in (pb.ATTRIBUTE_OPERATOR_IN, pb.ATTRIBUTE_OPERATOR_NOT_IN)
        shared = filters.value_test(op, actual, self.values if listed else self.value)
        if shared is not None:
            return shared
        if not isinstance(actual, datetime):
            return False
        if op == pb.ATTRIBUTE_OPERATOR_BEFORE:
            return actual < self.value
        if op == pb.ATTRIBUTE_OPERATOR_AFTER:
            return actual > self.value
        if op == pb.ATTRIBUTE_OPERATOR_WITHIN_LAST:
            return at.now - actual <= self.limit
        if op == pb.ATTRIBUTE_OPERATOR_MORE_THAN_AGO:
            return at.now - actual > self.limit
        return False

    def change(self, p: Profile, at: At) -> datetime | None:
        if self.operator not in AGO_OPS:
            return None
        actual = p.attributes.get(self.name)
        return _after(actual, self.limit, at.now) if isinstance(actual, datetime) else None


@dataclass(frozen=True)
class Event(Node):
    key: str
    operator: int
    count: int
    window: int  # whole days, 0: all time (EACH_DAY: its days)
    ago: timedelta  # LAST_PERFORMED_MORE_THAN_AGO

    def _sum(self, c: Counter | None, today: date) -> int:
        if c is None:
            return 0
        first = today - (self.window - 1) * DAY
        return sum(n for d, n in c.days.items() if first <= d <= today)

    def _holds(self, total: int) -> bool:
        op = self.operator
        if op == pb.EVENT_OPERATOR_AT_LEAST:
            return total >= self.count
        if op == pb.EVENT_OPERATOR_AT_MOST:
            return total <= self.count
        if op == pb.EVENT_OPERATOR_EXACTLY:
            return total == self.count
        return total == 0  # NEVER

    def test(self, p: Profile, at: At) -> bool:
        c = p.counters.get(self.key)
        op = self.operator
        if op == pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
            return c is not None and at.now - c.last_at > self.ago
        if op == pb.EVENT_OPERATOR_EACH_DAY:
            today = at.today
            return c is not None and all(c.days.get(today - i * DAY, 0) > 0 for i in range(self.window))
        if self.window:
            return self._holds(self._sum(c, at.today))
        return self._holds(c.total if c is not None else 0)

    def change(self, p: Profile, at: At) -> datetime | None:
        c = p.counters.get(self.key)
        if c is None:
            return None  # nothing performed: no answer changes until something is
        op = self.operator
        if op == pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
            return _after(c.last_at, self.ago, at.now)
        if not self.window:
            return None
        today = at.today
        if op == pb.EVENT_OPERATOR_EACH_DAY:
            return self._each_day_change(c, today)
        # A window's sum changes only when a day with events leaves it (or, for events dated
        # ahead of today, enters it): test those midnights only, in order.
        days = sorted(d for d in c.days if d > today - self.window * DAY)
        if not days:
            return None
        prefix = [0]
        for d in days:
            prefix.append(prefix[-1] + c.days[d])

        def window_sum(k: int) -> int:
            last = today + k * DAY
            lo = bisect.bisect_left(days, last - (self.window - 1) * DAY)
            hi = bisect.bisect_right(days, last)
            return prefix[hi] - prefix[lo]

        now_holds = self._holds(window_sum(0))
        steps = sorted({k for d in days for k in ((d - today).days, (d - today).days + self.window) if k >= 1})
        for k in steps:
            if self._holds(window_sum(k)) != now_holds:
                return midnight(today + k * DAY)
        return None

    def _each_day_change(self, c: Counter, today: date) -> datetime | None:
        def present(d: date) -> bool:
            return c.days.get(d, 0) > 0

        if all(present(today - i * DAY) for i in range(self.window)):
            k = 1
            while present(today + k * DAY):  # only events dated ahead of today
                k += 1
            return midnight(today + k * DAY)
        k = 1
        while present(today + k * DAY):
            if all(present(today + (k - i) * DAY) for i in range(self.window)):
                return midnight(today + k * DAY)
            k += 1
        return None


@dataclass(frozen=True)
class Inactive(Node):
    limit: timedelta

    def test(self, p: Profile, at: At) -> bool:
        if p.last_seen is None:
            return p.known
        return at.now - p.last_seen > self.limit

    def change(self, p: Profile, at: At) -> datetime | None:
        return None if p.last_seen is None else _after(p.last_seen, self.limit, at.now)


@dataclass(frozen=True)
class Platform(Node):
    platforms: frozenset[int]

    def test(self, p: Profile, at: At) -> bool:
        return bool(p.platforms & self.platforms)


@dataclass(frozen=True)
class AppVersion(Node):
    operator: int
    version: tuple[int, ...]

    def test(self, p: Profile, at: At) -> bool:
        mine = parse_version(p.app_version)
        if mine is None:
            return False
        if self.operator == pb.ATTRIBUTE_OPERATOR_EQUALS:
            return mine == self.version
        if self.operator == pb.ATTRIBUTE_OPERATOR_NOT_EQUALS:
            return mine != self.version
        return ORDERING[self.operator]((mine > self.version) - (mine < self.version))


@dataclass(frozen=True)
class RandomBucket(Node):
    low: int
    high: int
    salt: str

    def test(self, p: Profile, at: At) -> bool:
        return self.low <= bucket(self.salt, p.user_id, 100) < self.high


@dataclass(frozen=True)
class Membership(Node):
    segment_id: str
    negate: bool

    def test(self, p: Profile, at: At) -> bool:
        return at.member_of(self.segment_id) != self.negate


def compile_rule(rule: pb.Rule) -> Node:
    """A validated rule as a tree of plain objects, evaluated without touching protobuf."""
    node = rule.WhichOneof("node")
    if node == "group":
        return Group(rule.group.operator, tuple(compile_rule(r) for r in rule.group.rules))
    if node == "attribute":
        c = rule.attribute
        value = attribute_value(c.value)
        return Attribute(c.name, c.operator, value, tuple(attribute_value(v) for v in c.values),
                         to_timedelta(c.duration))
    if node == "event":
        c = rule.event
        return Event(counter_key(c), c.operator, c.count, window_days(c), to_timedelta(c.window))
    if node == "inactive":
        return Inactive(to_timedelta(rule.inactive.duration))
    if node == "platform":
        return Platform(frozenset(rule.platform.platforms))
    if node == "app_version":
        return AppVersion(rule.app_version.operator, parse_version(rule.app_version.version) or ())
    if node == "random_bucket":
        c = rule.random_bucket
        return RandomBucket(c.from_percent, c.to_percent, c.salt)
    if node == "segment":
        return Membership(rule.segment.segment_id, rule.segment.negate)
    raise ValueError("rule sets no condition")


def evaluate(rule: pb.Rule, profile: Profile, now: datetime, member_of: MembershipLookup) -> bool:
    return compile_rule(rule).test(profile, At(now, member_of))


def next_change(rule: pb.Rule, profile: Profile, now: datetime) -> datetime | None:
    """When the rule's answer may next change by time alone (its own conditions; those of
    referenced segments count where those segments are evaluated)."""
    return compile_rule(rule).change(profile, At(now, lambda _s: False))


def resolver(segments: dict[str, Node], profile: Profile, now: datetime) -> MembershipLookup:
    """Membership of one user in any segment, each rule evaluated at most once."""
    known: dict[str, bool] = {}

    def member_of(segment_id: str) -> bool:
        if segment_id not in known:
            node = segments.get(segment_id)
            known[segment_id] = False  # guards against cycles that slipped in
            known[segment_id] = node is not None and node.test(profile, at)
        return known[segment_id]

    at = At(now, member_of)
    return member_of


def memberships(segments: dict[str, Node], profile: Profile, now: datetime) -> tuple[list[str], datetime | None]:
    """The ids of every segment the user is in, and when that may next change by time."""
    member_of = resolver(segments, profile, now)
    inside = sorted(s for s in segments if member_of(s))
    at = At(now, member_of)
    changes = [t for node in segments.values() if (t := node.change(profile, at)) is not None]
    return inside, (min(changes) if changes else None)
