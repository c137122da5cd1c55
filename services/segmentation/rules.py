"""The segment language: validation of rule trees, and their evaluation for one user.

Pure functions over protos and plain data; the time is a parameter. This module is the
definition of what a rule means: the SQL compiler (sqlrules) must give the same answers
over the whole population, and a property-based test holds the two together.

Semantics worth knowing:
- Event windows count whole UTC calendar days, today included: "at least 3 within 7 days"
  counts the events of the last 7 days, today being one of them. Windows are whole days.
- A missing attribute fails every condition except NOT_EQUALS, NOT_IN and IS_EMPTY.
- Comparisons follow `compare`: kinds never mix, ints compare exactly, other numbers as
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
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.errors import FieldViolation
from nudgelib.protoconv import attribute_python, attribute_to_json, to_timedelta
from services.segmentation import compare, properties
from services.segmentation.profile import Counter, Profile

A = pb.AttributeOperator
E = pb.EventOperator
MAX_DEPTH = 10
MAX_CONDITIONS = 200
MAX_WINDOW_DAYS = 366
MAX_EACH_DAYS = 365
MAX_DURATION = timedelta(days=36_600)
MAX_IN_VALUES = 100
MAX_TEXT = 1024
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
EVENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,127}$")
VERSION_RE = re.compile(r"^\d{1,9}(\.\d{1,9}){0,9}$")
PLATFORMS = frozenset(v for v in common_pb2.Platform.values() if v != common_pb2.PLATFORM_UNSPECIFIED)
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799

ORDERING = properties.ORDERING
_VALUE_OPS = {pb.ATTRIBUTE_OPERATOR_EQUALS, pb.ATTRIBUTE_OPERATOR_NOT_EQUALS}
_STRING_OPS = {pb.ATTRIBUTE_OPERATOR_CONTAINS, pb.ATTRIBUTE_OPERATOR_STARTS_WITH}
_TIME_OPS = {pb.ATTRIBUTE_OPERATOR_BEFORE, pb.ATTRIBUTE_OPERATOR_AFTER}
_AGO_OPS = {pb.ATTRIBUTE_OPERATOR_WITHIN_LAST, pb.ATTRIBUTE_OPERATOR_MORE_THAN_AGO}
_LIST_OPS = {pb.ATTRIBUTE_OPERATOR_IN, pb.ATTRIBUTE_OPERATOR_NOT_IN}
_COUNTING = {pb.EVENT_OPERATOR_AT_LEAST, pb.EVENT_OPERATOR_AT_MOST, pb.EVENT_OPERATOR_EXACTLY}

# segment id -> is the user a member (evaluated lazily, for membership conditions)
MembershipLookup = Callable[[str], bool]


# ---------------------------------------------------------------- validation


def validate(rule: pb.Rule, path: str = "rule") -> list[FieldViolation]:
    """Every problem with a rule tree on its own, each naming the field. References to
    other segments are checked against the app's segments elsewhere (`find_cycle`)."""
    problems = _validate(rule, path, 0)
    size = count_conditions(rule)
    if size > MAX_CONDITIONS:
        problems.append(FieldViolation(path, f"holds {size} conditions, at most {MAX_CONDITIONS}"))
    return problems


def count_conditions(rule: pb.Rule) -> int:
    if rule.WhichOneof("node") == "group":
        return 1 + sum(count_conditions(r) for r in rule.group.rules)
    return 1


def _text_problem(text: str) -> str | None:
    if len(text) > MAX_TEXT or "\x00" in text:
        return f"must be at most {MAX_TEXT} characters without NUL"
    return None


def _value_problem(value: common_pb2.AttributeValue) -> str | None:
    kind = value.WhichOneof("kind")
    if kind is None:
        return "is required for this operator"
    if kind == "double_value" and not math.isfinite(value.double_value):
        return "must be a finite number"
    if kind == "string_value":
        return _text_problem(value.string_value)
    if kind == "string_list_value":
        for item in value.string_list_value.values:
            if (problem := _text_problem(item)) is not None:
                return problem
    if kind == "time_value" and not (
            _MIN_SECONDS <= value.time_value.seconds <= _MAX_SECONDS and 0 <= value.time_value.nanos < 10**9):
        return "is outside 0001-01-01..9999-12-31"
    return None


def _duration_problem(value: Any, present: bool) -> str | None:
    if not present or to_timedelta(value) <= timedelta(0):
        return "must be positive"
    if to_timedelta(value) > MAX_DURATION:
        return f"must be at most {MAX_DURATION.days} days"
    return None


def _validate(rule: pb.Rule, path: str, depth: int) -> list[FieldViolation]:
    problems: list[FieldViolation] = []
    if depth > MAX_DEPTH:
        return [FieldViolation(path, f"rules nest deeper than {MAX_DEPTH} levels")]
    node = rule.WhichOneof("node")
    if node is None:
        return [FieldViolation(path, "must set one condition or group")]
    here = f"{path}.{node}"

    def bad(field: str, description: str) -> None:
        problems.append(FieldViolation(f"{here}.{field}" if field else here, description))

    if node == "group":
        g = rule.group
        if g.operator == pb.GROUP_OPERATOR_UNSPECIFIED or g.operator not in pb.GroupOperator.values():
            bad("operator", "is required: AND, OR or NOT")
        if not g.rules:
            bad("rules", "must hold at least one rule")
        for i, child in enumerate(g.rules):
            problems += _validate(child, f"{here}.rules[{i}]", depth + 1)
    elif node == "attribute":
        _validate_attribute(rule.attribute, bad)
    elif node == "event":
        _validate_event(rule.event, here, bad, problems)
    elif node == "inactive":
        if (p := _duration_problem(rule.inactive.duration, rule.inactive.HasField("duration"))) is not None:
            bad("duration", p)
    elif node == "platform":
        if not rule.platform.platforms:
            bad("platforms", "must hold at least one platform")
        for i, platform in enumerate(rule.platform.platforms):
            if platform not in PLATFORMS:
                bad(f"platforms[{i}]", "must be PLATFORM_IOS, PLATFORM_ANDROID or PLATFORM_WEB")
    elif node == "app_version":
        c = rule.app_version
        if c.operator not in ORDERING and c.operator not in _VALUE_OPS:
            bad("operator", "must be EQUALS, NOT_EQUALS, GREATER, GREATER_OR_EQUAL, LESS or LESS_OR_EQUAL")
        if parse_version(c.version) is None:
            bad("version", "must be dotted numbers such as 4.2.0")
    elif node == "random_bucket":
        c = rule.random_bucket
        if not c.from_percent < c.to_percent <= 100:
            bad("", "needs from_percent < to_percent <= 100")
        if len(c.salt) > 128 or "\x00" in c.salt:
            bad("salt", "must be at most 128 characters without NUL")
    elif node == "segment":
        if not rule.segment.segment_id:
            bad("segment_id", "is required")
    return problems


def _validate_attribute(c: pb.AttributeCondition, bad) -> None:
    if not c.name:
        bad("name", "is required")
    elif (p := _text_problem(c.name)) is not None:
        bad("name", p)
    op = c.operator
    if op == pb.ATTRIBUTE_OPERATOR_UNSPECIFIED or op not in A.values():
        bad("operator", "is required")
        return
    kind = c.value.WhichOneof("kind")
    if op in _VALUE_OPS or op in ORDERING or op in _STRING_OPS or op in _TIME_OPS:
        if (p := _value_problem(c.value)) is not None:
            bad("value", p)
        elif op in ORDERING and kind not in ("int_value", "double_value", "string_value", "time_value"):
            bad("value", "must be a number, a string or a time to compare with")
        elif op in _STRING_OPS and kind != "string_value":
            bad("value", "must be a string")
        elif op in _TIME_OPS and kind != "time_value":
            bad("value", "must be a time")
    if op in _LIST_OPS:
        if not c.values:
            bad("values", "must hold at least one value")
        elif len(c.values) > MAX_IN_VALUES:
            bad("values", f"must hold at most {MAX_IN_VALUES} values")
        for i, v in enumerate(c.values):
            if (p := _value_problem(v)) is not None:
                bad(f"values[{i}]", p)
    if op in _AGO_OPS and (p := _duration_problem(c.duration, c.HasField("duration"))) is not None:
        bad("duration", p)


def _validate_event(c: pb.EventCondition, here: str, bad, problems: list[FieldViolation]) -> None:
    if not c.name:
        bad("name", "is required")
    elif not EVENT_NAME_RE.match(c.name):
        bad("name", "must be an event name: a letter, then at most 127 letters, digits, _ . : -")
    op = c.operator
    if op == pb.EVENT_OPERATOR_UNSPECIFIED or op not in E.values():
        bad("operator", "is required")
        return
    if c.count and op not in _COUNTING:
        bad("count", "is only used by AT_LEAST, AT_MOST and EXACTLY")
    if c.days and op != pb.EVENT_OPERATOR_EACH_DAY:
        bad("days", "is only used by EACH_DAY")
    if op == pb.EVENT_OPERATOR_EACH_DAY:
        if not 1 <= c.days <= MAX_EACH_DAYS:
            bad("days", f"must be between 1 and {MAX_EACH_DAYS}")
        if c.HasField("window"):
            bad("window", "is not used by EACH_DAY (days says how many)")
    elif op == pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
        if (p := _duration_problem(c.window, c.HasField("window"))) is not None:
            bad("window", p + " for LAST_PERFORMED_MORE_THAN_AGO")
    elif c.HasField("window"):
        window = to_timedelta(c.window)
        if window <= timedelta(0):
            bad("window", "must be positive (leave it unset to count all time)")
        elif window % DAY:
            bad("window", "must be whole days: event windows count UTC calendar days")
        elif window > MAX_WINDOW_DAYS * DAY:
            bad("window", f"must be at most {MAX_WINDOW_DAYS} days")
    problems += properties.validate(c.property_filters, f"{here}.property_filters")


def referenced_segments(rule: pb.Rule) -> set[str]:
    node = rule.WhichOneof("node")
    if node == "group":
        found: set[str] = set()
        for child in rule.group.rules:
            found |= referenced_segments(child)
        return found
    if node == "segment":
        return {rule.segment.segment_id}
    return set()


def find_cycle(start: str, edges: dict[str, set[str]]) -> bool:
    """Whether following references from `start` comes back to it."""
    stack, seen = list(edges.get(start, ())), set()
    while stack:
        current = stack.pop()
        if current == start:
            return True
        if current in seen:
            continue
        seen.add(current)
        stack.extend(edges.get(current, ()))
    return False


def inlined_size(rule: pb.Rule, segments: dict[str, pb.Rule], depth: int = 0) -> int:
    """Conditions of the rule once referenced segments are substituted (what SQL runs)."""
    node = rule.WhichOneof("node")
    if node == "group":
        return 1 + sum(inlined_size(r, segments, depth) for r in rule.group.rules)
    if node == "segment" and rule.segment.segment_id in segments and depth < 50:
        return 1 + inlined_size(segments[rule.segment.segment_id], segments, depth + 1)
    return 1


# ---------------------------------------------------------------- what a rule reads


def window_days(c: pb.EventCondition) -> int:
    """Days a counting condition looks back (0: all time)."""
    if c.operator == pb.EVENT_OPERATOR_EACH_DAY:
        return c.days
    if c.operator == pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO or not c.HasField("window"):
        return 0
    return max(1, to_timedelta(c.window) // DAY)


def event_conditions(rule: pb.Rule):
    """Every event condition of the tree (not of referenced segments)."""
    node = rule.WhichOneof("node")
    if node == "group":
        for child in rule.group.rules:
            yield from event_conditions(child)
    elif node == "event":
        yield rule.event


def counter_key(c: pb.EventCondition) -> str:
    return properties.counter_key(c.name, properties.compile_filters(c.property_filters))


# ---------------------------------------------------------------- evaluation


def parse_version(text: str) -> tuple[int, ...] | None:
    if not VERSION_RE.match(text):
        return None
    return tuple(int(p) for p in text.split("."))


def bucket(salt: str, user_id: str) -> int:
    """A stable number in [0, 100) per user and salt."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def attribute_value(v: common_pb2.AttributeValue) -> Any:
    data = attribute_to_json(v)
    return None if data is None else attribute_python(data)


def midnight(day: date) -> datetime | None:
    try:
        return datetime.combine(day, time(0), tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        return None


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
        if op == pb.ATTRIBUTE_OPERATOR_NOT_EQUALS:
            return not (present and compare.equal(actual, self.value))
        if op == pb.ATTRIBUTE_OPERATOR_NOT_IN:
            return not (present and any(compare.equal(actual, v) for v in self.values))
        if not present:
            return False
        if op == pb.ATTRIBUTE_OPERATOR_EQUALS:
            return compare.equal(actual, self.value)
        if op == pb.ATTRIBUTE_OPERATOR_IN:
            return any(compare.equal(actual, v) for v in self.values)
        if op in ORDERING:
            result = compare.order(actual, self.value)
            return result is not None and ORDERING[op](result)
        if op == pb.ATTRIBUTE_OPERATOR_CONTAINS:
            return compare.contains(actual, self.value)
        if op == pb.ATTRIBUTE_OPERATOR_STARTS_WITH:
            return compare.starts_with(actual, self.value)
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
        if self.operator not in _AGO_OPS:
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
        return self.low <= bucket(self.salt, p.user_id) < self.high


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
