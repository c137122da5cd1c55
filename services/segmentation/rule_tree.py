"""What validation, evaluation and the SQL compiler (sqlrules) share of the segment language:
the operator families, walking a rule tree and the references between segments, and what a
condition reads (its counter and how many UTC days back it looks). Pure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib import filters
from nudgelib.protoconv import attribute_python, attribute_to_json, to_timedelta
from services.segmentation import properties

DAY = timedelta(days=1)

# Attribute and property operators share their numbers (common.proto says so, a unit test
# holds it), so attribute comparisons are the filters' own.
ORDERING = filters.ORDERING
VALUE_OPS = {pb.ATTRIBUTE_OPERATOR_EQUALS, pb.ATTRIBUTE_OPERATOR_NOT_EQUALS}
STRING_OPS = {pb.ATTRIBUTE_OPERATOR_CONTAINS, pb.ATTRIBUTE_OPERATOR_STARTS_WITH}
TIME_OPS = {pb.ATTRIBUTE_OPERATOR_BEFORE, pb.ATTRIBUTE_OPERATOR_AFTER}
AGO_OPS = {pb.ATTRIBUTE_OPERATOR_WITHIN_LAST, pb.ATTRIBUTE_OPERATOR_MORE_THAN_AGO}
LIST_OPS = {pb.ATTRIBUTE_OPERATOR_IN, pb.ATTRIBUTE_OPERATOR_NOT_IN}
COUNTING = {pb.EVENT_OPERATOR_AT_LEAST, pb.EVENT_OPERATOR_AT_MOST, pb.EVENT_OPERATOR_EXACTLY}


def event_conditions(rule: pb.Rule) -> Iterator[pb.EventCondition]:
    """Every event condition of the tree (not of referenced segments)."""
    node = rule.WhichOneof("node")
    if node == "group":
        for child in rule.group.rules:
            yield from event_conditions(child)
    elif node == "event":
        yield rule.event


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


def dependents(segments: dict[str, pb.Rule], changed: str) -> list[str]:
    """The changed segment and every segment referring to it, directly or not."""
    found, frontier = {changed}, [changed]
    while frontier:
        current = frontier.pop()
        for sid, rule in segments.items():
            if sid not in found and current in referenced_segments(rule):
                found.add(sid)
                frontier.append(sid)
    return sorted(found)


def window_days(c: pb.EventCondition) -> int:
    """Days a counting condition looks back (0: all time)."""
    if c.operator == pb.EVENT_OPERATOR_EACH_DAY:
        return c.days
    if c.operator == pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO or not c.HasField("window"):
        return 0
    return max(1, to_timedelta(c.window) // DAY)


def counter_key(c: pb.EventCondition) -> str:
    return properties.counter_key(c.name, filters.compile_filters(c.property_filters))


def attribute_value(v: common_pb2.AttributeValue) -> Any:
    """A condition's value as plain Python, as attributes are compared (None: unset)."""
    data = attribute_to_json(v)
    return None if data is None else attribute_python(data)


def midnight(day: date) -> datetime | None:
    """The UTC midnight that starts `day`, where windows move; None past the calendar's end."""
    try:
        return datetime.combine(day, time(0), tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        return None
