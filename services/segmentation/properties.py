"""Property filters on event conditions (`purchase` where `cart_value > 100`): validation,
matching one event, and the counter key under which matching events are counted.

Events are counted per user, counter and day at the moment they are applied: once under
their name, and once under each property-filtered counter of the app's segments they match.
A counter's key is the event name plus a digest of its filters, so two segments with the
same filters share one counter. Filters look at top-level properties only.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib import compare
from nudgelib.violations import FieldViolation
from nudgelib.filters import plain

A = pb.AttributeOperator
MAX_FILTERS = 10
MAX_IN_VALUES = 100
KEY_SEPARATOR = "#"  # event names cannot hold it (ingestion's NAME_RE)

ORDERING = {pb.ATTRIBUTE_OPERATOR_GREATER: lambda c: c > 0,
            pb.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL: lambda c: c >= 0,
            pb.ATTRIBUTE_OPERATOR_LESS: lambda c: c < 0,
            pb.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL: lambda c: c <= 0}
_SCALAR_OPS = {pb.ATTRIBUTE_OPERATOR_EQUALS, pb.ATTRIBUTE_OPERATOR_NOT_EQUALS}
_LIST_OPS = {pb.ATTRIBUTE_OPERATOR_IN, pb.ATTRIBUTE_OPERATOR_NOT_IN}
_STRING_OPS = {pb.ATTRIBUTE_OPERATOR_CONTAINS, pb.ATTRIBUTE_OPERATOR_STARTS_WITH}
_PRESENCE_OPS = {pb.ATTRIBUTE_OPERATOR_EXISTS, pb.ATTRIBUTE_OPERATOR_IS_EMPTY}
SUPPORTED = set(ORDERING) | _SCALAR_OPS | _LIST_OPS | _STRING_OPS | _PRESENCE_OPS


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or (isinstance(value, float) and math.isfinite(value))


def validate(filters, path: str) -> list[FieldViolation]:
    problems: list[FieldViolation] = []
    if len(filters) > MAX_FILTERS:
        problems.append(FieldViolation(path, f"at most {MAX_FILTERS} property filters per condition"))
    for i, f in enumerate(filters):
        here = f"{path}[{i}]"
        if not f.name:
            problems.append(FieldViolation(f"{here}.name", "is required"))
        elif len(f.name) > 256 or "\x00" in f.name:
            problems.append(FieldViolation(f"{here}.name", "must be at most 256 characters without NUL"))
        op = f.operator
        if op == pb.ATTRIBUTE_OPERATOR_UNSPECIFIED:
            problems.append(FieldViolation(f"{here}.operator", "is required"))
            continue
        if op not in SUPPORTED:
            problems.append(FieldViolation(
                f"{here}.operator", "time operators apply to attributes; event properties have no time type"))
            continue
        value = plain(f.value) if f.HasField("value") else None
        if op in _SCALAR_OPS and not _is_scalar(value):
            problems.append(FieldViolation(f"{here}.value", "must be a string, a finite number or a boolean"))
        elif op in ORDERING and not (isinstance(value, str) or (isinstance(value, float) and not isinstance(value, bool))):
            problems.append(FieldViolation(f"{here}.value", "must be a finite number or a string"))
        elif op in _STRING_OPS and not isinstance(value, str):
            problems.append(FieldViolation(f"{here}.value", "must be a string"))
        elif op in _LIST_OPS:
            if not isinstance(value, list) or not value:
                problems.append(FieldViolation(f"{here}.value", "must be a non-empty list"))
            elif len(value) > MAX_IN_VALUES or not all(_is_scalar(v) for v in value):
                problems.append(FieldViolation(
                    f"{here}.value", f"must list at most {MAX_IN_VALUES} strings, finite numbers or booleans"))
    return problems


@dataclass(frozen=True)
class Filter:
    name: str
    operator: int
    value: Any  # plain Python; a list for IN / NOT_IN


def compile_filters(filters) -> tuple[Filter, ...]:
    return tuple(Filter(f.name, int(f.operator), plain(f.value) if f.HasField("value") else None)
                 for f in filters)


def counter_key(name: str, filters: tuple[Filter, ...]) -> str:
    """The counter an event condition reads: its name, or name#digest of its filters (the
    filters' order does not matter: they all have to hold)."""
    if not filters:
        return name
    canonical = sorted(json.dumps([f.name, f.operator, f.value], sort_keys=True) for f in filters)
    digest = hashlib.sha256("\n".join(canonical).encode()).hexdigest()[:20]
    return f"{name}{KEY_SEPARATOR}{digest}"


def event_name(key: str) -> str:
    return key.split(KEY_SEPARATOR, 1)[0]


def matches(f: Filter, properties: dict[str, Any]) -> bool:
    present = f.name in properties
    actual = properties.get(f.name)
    op = f.operator
    if op == pb.ATTRIBUTE_OPERATOR_EXISTS:
        return present and actual is not None
    if op == pb.ATTRIBUTE_OPERATOR_IS_EMPTY:
        return compare.is_empty(present, actual)
    if op == pb.ATTRIBUTE_OPERATOR_EQUALS:
        return present and compare.equal(actual, f.value)
    if op == pb.ATTRIBUTE_OPERATOR_NOT_EQUALS:
        return not (present and compare.equal(actual, f.value))
    if op == pb.ATTRIBUTE_OPERATOR_IN:
        return present and any(compare.equal(actual, v) for v in f.value)
    if op == pb.ATTRIBUTE_OPERATOR_NOT_IN:
        return not (present and any(compare.equal(actual, v) for v in f.value))
    if op in ORDERING:
        result = compare.order(actual, f.value) if present else None
        return result is not None and ORDERING[op](result)
    if op == pb.ATTRIBUTE_OPERATOR_CONTAINS:
        return present and compare.contains(actual, f.value)
    if op == pb.ATTRIBUTE_OPERATOR_STARTS_WITH:
        return present and compare.starts_with(actual, f.value)
    return False


def match_all(filters: tuple[Filter, ...], properties: dict[str, Any]) -> bool:
    return all(matches(f, properties) for f in filters)
