"""Validation of segment rule trees: every problem of a rule on its own, each naming its
field (so a client can point at it), and the checks over an app's segments together
(references, cycles, the size once references are inlined). Pure."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.violations import FieldViolation
from nudgelib.protoconv import to_timedelta
from nudgelib.versions import parse_version
from nudgelib import filters
from services.segmentation.rule_tree import (
    AGO_OPS,
    COUNTING,
    DAY,
    LIST_OPS,
    ORDERING,
    STRING_OPS,
    TIME_OPS,
    VALUE_OPS,
    referenced_segments,
)

A = pb.AttributeOperator
E = pb.EventOperator
MAX_DEPTH = 10
MAX_CONDITIONS = 200
MAX_INLINED = 1000
MAX_WINDOW_DAYS = 366
MAX_EACH_DAYS = 365
MAX_DURATION = timedelta(days=36_600)
MAX_IN_VALUES = 100
MAX_TEXT = 1024
EVENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,127}$")
PLATFORMS = frozenset(v for v in common_pb2.Platform.values() if v != common_pb2.PLATFORM_UNSPECIFIED)
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799


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
        if c.operator not in ORDERING and c.operator not in VALUE_OPS:
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
    if op in VALUE_OPS or op in ORDERING or op in STRING_OPS or op in TIME_OPS:
        if (p := _value_problem(c.value)) is not None:
            bad("value", p)
        elif op in ORDERING and kind not in ("int_value", "double_value", "string_value", "time_value"):
            bad("value", "must be a number, a string or a time to compare with")
        elif op in STRING_OPS and kind != "string_value":
            bad("value", "must be a string")
        elif op in TIME_OPS and kind != "time_value":
            bad("value", "must be a time")
    if op in LIST_OPS:
        if not c.values:
            bad("values", "must hold at least one value")
        elif len(c.values) > MAX_IN_VALUES:
            bad("values", f"must hold at most {MAX_IN_VALUES} values")
        for i, v in enumerate(c.values):
            if (p := _value_problem(v)) is not None:
                bad(f"values[{i}]", p)
    if op in AGO_OPS and (p := _duration_problem(c.duration, c.HasField("duration"))) is not None:
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
    if c.count and op not in COUNTING:
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
    problems += filters.validate(c.property_filters, f"{here}.property_filters")


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


def reference_problems(rule: pb.Rule, segment_id: str | None, segments: dict[str, pb.Rule],
                       path: str = "rule") -> list[FieldViolation]:
    """Membership conditions must name existing segments and must not come back to the
    segment being saved; the rule with references substituted must stay small enough."""
    problems: list[FieldViolation] = []
    edges = {sid: referenced_segments(r) for sid, r in segments.items()}
    if segment_id is not None:
        edges[segment_id] = referenced_segments(rule)

    def walk(r: pb.Rule, here: str) -> None:
        node = r.WhichOneof("node")
        if node == "group":
            for i, child in enumerate(r.group.rules):
                walk(child, f"{here}.group.rules[{i}]")
        elif node == "segment":
            ref = r.segment.segment_id
            field = f"{here}.segment.segment_id"
            if ref == segment_id or (segment_id is not None and find_cycle(segment_id, {**edges, segment_id: {ref}})):
                problems.append(FieldViolation(field, f"segment {ref!r} leads back to this segment (a cycle)"))
            elif ref not in segments:
                problems.append(FieldViolation(field, f"refers to unknown segment {ref!r}"))

    walk(rule, path)
    if not problems:
        size = inlined_size(rule, segments)
        if size > MAX_INLINED:
            problems.append(FieldViolation(path, f"holds {size} conditions with the segments it refers to"
                                                 f" included, at most {MAX_INLINED}"))
    return problems
