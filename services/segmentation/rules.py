"""The segment language: validation of rule trees and their evaluation for one user.

Pure functions over protos and plain data; the clock is a parameter.

Semantics worth knowing:
- Event windows count whole UTC days, today included: "at least 3 within 7 days" counts
  events on the last 7 calendar days.
- A missing attribute fails every comparison except NOT_EQUALS, NOT_IN and IS_EMPTY.
- A user nobody has told us about has no attributes, no events and no platforms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.errors import FieldViolation
from nudgelib.protoconv import attribute_python, attribute_to_json, to_timedelta
from services.segmentation.profile import Profile

A = pb.AttributeOperator
E = pb.EventOperator
MAX_DEPTH = 10
_COMPARISONS = {A.ATTRIBUTE_OPERATOR_GREATER, A.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL,
                A.ATTRIBUTE_OPERATOR_LESS, A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL}
_NEEDS_VALUE = _COMPARISONS | {A.ATTRIBUTE_OPERATOR_EQUALS, A.ATTRIBUTE_OPERATOR_NOT_EQUALS,
                               A.ATTRIBUTE_OPERATOR_CONTAINS, A.ATTRIBUTE_OPERATOR_STARTS_WITH,
                               A.ATTRIBUTE_OPERATOR_BEFORE, A.ATTRIBUTE_OPERATOR_AFTER}
_NEEDS_DURATION = {A.ATTRIBUTE_OPERATOR_WITHIN_LAST, A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO}

# segment id -> is the user a member (evaluated lazily, for membership conditions)
MembershipLookup = Callable[[str], bool]


# ---------------------------------------------------------------- validation


def validate(rule: pb.Rule, path: str = "rule", depth: int = 0) -> list[FieldViolation]:
    """Every problem with a rule tree, each naming the field."""
    problems: list[FieldViolation] = []
    if depth > MAX_DEPTH:
        return [FieldViolation(path, f"rules nest deeper than {MAX_DEPTH} levels")]
    node = rule.WhichOneof("node")
    if node is None:
        return [FieldViolation(path, "must set one condition or group")]
    here = f"{path}.{node}"
    if node == "group":
        g = rule.group
        if g.operator == pb.GROUP_OPERATOR_UNSPECIFIED:
            problems.append(FieldViolation(f"{here}.operator", "is required"))
        if not g.rules:
            problems.append(FieldViolation(f"{here}.rules", "must hold at least one rule"))
        for i, child in enumerate(g.rules):
            problems += validate(child, f"{here}.rules[{i}]", depth + 1)
    elif node == "attribute":
        c = rule.attribute
        if not c.name:
            problems.append(FieldViolation(f"{here}.name", "is required"))
        if c.operator == A.ATTRIBUTE_OPERATOR_UNSPECIFIED:
            problems.append(FieldViolation(f"{here}.operator", "is required"))
        if c.operator in _NEEDS_VALUE and c.value.WhichOneof("kind") is None:
            problems.append(FieldViolation(f"{here}.value", "is required for this operator"))
        if c.operator in (A.ATTRIBUTE_OPERATOR_IN, A.ATTRIBUTE_OPERATOR_NOT_IN) and not c.values:
            problems.append(FieldViolation(f"{here}.values", "must hold at least one value"))
        if c.operator in _NEEDS_DURATION and to_timedelta(c.duration) <= timedelta(0):
            problems.append(FieldViolation(f"{here}.duration", "must be positive"))
    elif node == "event":
        c = rule.event
        if not c.name:
            problems.append(FieldViolation(f"{here}.name", "is required"))
        if c.operator == E.EVENT_OPERATOR_UNSPECIFIED:
            problems.append(FieldViolation(f"{here}.operator", "is required"))
        if c.operator == E.EVENT_OPERATOR_EACH_DAY and not 1 <= c.days <= 365:
            problems.append(FieldViolation(f"{here}.days", "must be between 1 and 365"))
        if c.operator == E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO and to_timedelta(c.window) <= timedelta(0):
            problems.append(FieldViolation(f"{here}.window", "must be positive for LAST_PERFORMED_MORE_THAN_AGO"))
        if c.HasField("window") and to_timedelta(c.window) < timedelta(0):
            problems.append(FieldViolation(f"{here}.window", "must not be negative"))
        if c.property_filters:
            problems.append(FieldViolation(
                f"{here}.property_filters", "property filters on segment event conditions are not supported yet"))
    elif node == "inactive":
        if to_timedelta(rule.inactive.duration) <= timedelta(0):
            problems.append(FieldViolation(f"{here}.duration", "must be positive"))
    elif node == "platform":
        if not rule.platform.platforms:
            problems.append(FieldViolation(f"{here}.platforms", "must hold at least one platform"))
    elif node == "app_version":
        c = rule.app_version
        if c.operator not in _COMPARISONS | {A.ATTRIBUTE_OPERATOR_EQUALS, A.ATTRIBUTE_OPERATOR_NOT_EQUALS}:
            problems.append(FieldViolation(f"{here}.operator", "must be a comparison"))
        if parse_version(c.version) is None:
            problems.append(FieldViolation(f"{here}.version", "must be dotted numbers such as 4.2.0"))
    elif node == "random_bucket":
        c = rule.random_bucket
        if not c.from_percent < c.to_percent <= 100:
            problems.append(FieldViolation(f"{here}", "needs from_percent < to_percent <= 100"))
    elif node == "segment":
        if not rule.segment.segment_id:
            problems.append(FieldViolation(f"{here}.segment_id", "is required"))
    return problems


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


# ---------------------------------------------------------------- evaluation


def parse_version(text: str) -> tuple[int, ...] | None:
    try:
        parts = tuple(int(p) for p in text.split("."))
    except ValueError:
        return None
    return parts if text else None


def bucket(salt: str, user_id: str) -> int:
    """A stable number in [0, 100) per user and salt."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _value(v) -> Any:
    data = attribute_to_json(v)
    return None if data is None else attribute_python(data)


def _compare(op: int, actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    try:
        if op == A.ATTRIBUTE_OPERATOR_GREATER:
            return actual > expected
        if op == A.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL:
            return actual >= expected
        if op == A.ATTRIBUTE_OPERATOR_LESS:
            return actual < expected
        if op == A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL:
            return actual <= expected
    except TypeError:
        return False
    return False


def _attribute(c: pb.AttributeCondition, profile: Profile, now: datetime) -> bool:
    present = c.name in profile.attributes
    actual = profile.attributes.get(c.name)
    op = c.operator
    if op == A.ATTRIBUTE_OPERATOR_EXISTS:
        return present
    if op == A.ATTRIBUTE_OPERATOR_IS_EMPTY:
        return not present or actual in ("", [], None)
    if op == A.ATTRIBUTE_OPERATOR_NOT_EQUALS:
        return not present or actual != _value(c.value)
    if op == A.ATTRIBUTE_OPERATOR_NOT_IN:
        return not present or actual not in [_value(v) for v in c.values]
    if not present:
        return False
    if op == A.ATTRIBUTE_OPERATOR_EQUALS:
        expected = _value(c.value)
        return actual == expected and isinstance(actual, bool) == isinstance(expected, bool)
    if op == A.ATTRIBUTE_OPERATOR_IN:
        return actual in [_value(v) for v in c.values]
    if op in _COMPARISONS:
        return _compare(op, actual, _value(c.value))
    if op == A.ATTRIBUTE_OPERATOR_CONTAINS:
        expected = _value(c.value)
        if isinstance(actual, list):
            return expected in actual
        return isinstance(actual, str) and isinstance(expected, str) and expected in actual
    if op == A.ATTRIBUTE_OPERATOR_STARTS_WITH:
        expected = _value(c.value)
        return isinstance(actual, str) and isinstance(expected, str) and actual.startswith(expected)
    if op in (A.ATTRIBUTE_OPERATOR_BEFORE, A.ATTRIBUTE_OPERATOR_AFTER):
        expected = _value(c.value)
        if not isinstance(actual, datetime) or not isinstance(expected, datetime):
            return False
        return actual < expected if op == A.ATTRIBUTE_OPERATOR_BEFORE else actual > expected
    if op in _NEEDS_DURATION:
        if not isinstance(actual, datetime):
            return False
        age = now - actual
        limit = to_timedelta(c.duration)
        return age <= limit if op == A.ATTRIBUTE_OPERATOR_WITHIN_LAST else age > limit
    return False


def _event(c: pb.EventCondition, profile: Profile, now: datetime) -> bool:
    days = profile.events.get(c.name, [])
    op = c.operator
    if op == E.EVENT_OPERATOR_NEVER:
        return not days
    if op == E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
        if not days:
            return False
        return now - max(d.last_at for d in days) > to_timedelta(c.window)
    today = now.date()
    if op == E.EVENT_OPERATOR_EACH_DAY:
        wanted = {today - timedelta(days=i) for i in range(c.days)}
        return wanted <= {d.day for d in days if d.count > 0}
    if c.HasField("window"):
        window_days = max(1, -(-to_timedelta(c.window) // timedelta(days=1)))
        first_day = today - timedelta(days=window_days - 1)
        total = sum(d.count for d in days if first_day <= d.day <= today)
    else:
        total = sum(d.count for d in days)
    if op == E.EVENT_OPERATOR_AT_LEAST:
        return total >= c.count
    if op == E.EVENT_OPERATOR_AT_MOST:
        return total <= c.count
    if op == E.EVENT_OPERATOR_EXACTLY:
        return total == c.count
    return False


def evaluate(rule: pb.Rule, profile: Profile, now: datetime, member_of: MembershipLookup) -> bool:
    node = rule.WhichOneof("node")
    if node == "group":
        op = rule.group.operator
        children = (evaluate(r, profile, now, member_of) for r in rule.group.rules)
        if op == pb.GROUP_OPERATOR_AND:
            return all(children)
        if op == pb.GROUP_OPERATOR_OR:
            return any(children)
        return not any(children)  # NOT
    if node == "attribute":
        return _attribute(rule.attribute, profile, now)
    if node == "event":
        return _event(rule.event, profile, now)
    if node == "inactive":
        if profile.last_seen is None:
            return profile.known
        return now - profile.last_seen > to_timedelta(rule.inactive.duration)
    if node == "platform":
        return bool(profile.platforms & set(rule.platform.platforms))
    if node == "app_version":
        mine, theirs = parse_version(profile.app_version), parse_version(rule.app_version.version)
        if mine is None or theirs is None:
            return False
        if rule.app_version.operator == A.ATTRIBUTE_OPERATOR_EQUALS:
            return mine == theirs
        if rule.app_version.operator == A.ATTRIBUTE_OPERATOR_NOT_EQUALS:
            return mine != theirs
        return _compare(rule.app_version.operator, mine, theirs)
    if node == "random_bucket":
        c = rule.random_bucket
        return c.from_percent <= bucket(c.salt, profile.user_id) < c.to_percent
    if node == "segment":
        inside = member_of(rule.segment.segment_id)
        return not inside if rule.segment.negate else inside
    return False


def resolver(segments: dict[str, pb.Rule], profile: Profile, now: datetime) -> MembershipLookup:
    """Membership of one user in any segment, each rule evaluated at most once."""
    known: dict[str, bool] = {}

    def member_of(segment_id: str) -> bool:
        if segment_id not in known:
            rule = segments.get(segment_id)
            known[segment_id] = False  # guards against cycles that slipped in
            known[segment_id] = rule is not None and evaluate(rule, profile, now, member_of)
        return known[segment_id]

    return member_of


def memberships(segments: dict[str, pb.Rule], profile: Profile, now: datetime) -> list[str]:
    """The ids of every segment the user is in."""
    member_of = resolver(segments, profile, now)
    return sorted(s for s in segments if member_of(s))
