"""The one property-filter language: trigger filters, exception filters and segment event
conditions (`purchase` where `cart_value > 100`). Validation, compilation and matching. Pure.

One rule for every caller:
- `name` is a property; dots reach into nested objects (`address.city`). A property that is
  missing, or a path that runs into something other than an object, is *absent*.
- An absent property fails every operator except NOT_EQUALS, NOT_IN and IS_EMPTY, which it
  passes. A null is present: EXISTS fails on it and IS_EMPTY passes.
- Values compare as `compare` says: never across kinds, numbers as numbers, strings by code point.
- WITHIN_DISTANCE: the property is an object with numeric `latitude` and `longitude` (degrees),
  and its great-circle distance to the filter's circle's centre is at most the radius.

Every filter is evaluated here, in Python: segmentation's counters (live, and filled from
ingestion's past events when a filter is new) included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudgelib import compare
from nudgelib.violations import FieldViolation

P = common_pb2.PropertyOperator
MAX_FILTERS = 10
MAX_IN_VALUES = 100
MAX_NAME = 256
# Mean Earth radius (IUGG), metres: haversine distances are within 0.5% of the ellipsoid's.
EARTH_RADIUS_METERS = 6_371_008.8
MAX_RADIUS_METERS = 20_000_000.0

ORDERING = {P.PROPERTY_OPERATOR_GREATER: lambda c: c > 0,
            P.PROPERTY_OPERATOR_GREATER_OR_EQUAL: lambda c: c >= 0,
            P.PROPERTY_OPERATOR_LESS: lambda c: c < 0,
            P.PROPERTY_OPERATOR_LESS_OR_EQUAL: lambda c: c <= 0}
SCALAR_OPS = frozenset({P.PROPERTY_OPERATOR_EQUALS, P.PROPERTY_OPERATOR_NOT_EQUALS})
LIST_OPS = frozenset({P.PROPERTY_OPERATOR_IN, P.PROPERTY_OPERATOR_NOT_IN})
STRING_OPS = frozenset({P.PROPERTY_OPERATOR_CONTAINS, P.PROPERTY_OPERATOR_STARTS_WITH})
PRESENCE_OPS = frozenset({P.PROPERTY_OPERATOR_EXISTS, P.PROPERTY_OPERATOR_IS_EMPTY})
SUPPORTED = frozenset(ORDERING) | SCALAR_OPS | LIST_OPS | STRING_OPS | PRESENCE_OPS | {
    P.PROPERTY_OPERATOR_WITHIN_DISTANCE}
# The operators an absent property passes.
PASS_WHEN_ABSENT = frozenset({P.PROPERTY_OPERATOR_NOT_EQUALS, P.PROPERTY_OPERATOR_NOT_IN,
                              P.PROPERTY_OPERATOR_IS_EMPTY})

# What `lookup` returns for a property that is not there (None is a present null).
ABSENT = object()


def plain(value: struct_pb2.Value) -> Any:
    """A property value as plain Python: None, float, str, bool, list or dict. A number that
    is not finite reads as null (JSON has no NaN; ingestion refuses them anyway)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return number if math.isfinite(number) else None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return plain_struct(value.struct_value)
    if kind == "list_value":
        return [plain(v) for v in value.list_value.values]
    return None


def plain_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {k: plain(v) for k, v in struct.fields.items()}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or (isinstance(value, float) and math.isfinite(value))


def path_of(name: str) -> tuple[str, ...]:
    return tuple(name.split("."))


def validate(filters, path: str) -> list[FieldViolation]:
    """Field violations of a list of `PropertyFilter`s at `path` (e.g. `campaign.triggers[0].property_filters`)."""
    problems: list[FieldViolation] = []
    if len(filters) > MAX_FILTERS:
        problems.append(FieldViolation(path, f"at most {MAX_FILTERS} property filters"))
    for i, f in enumerate(filters):
        here = f"{path}[{i}]"
        if not f.name:
            problems.append(FieldViolation(f"{here}.name", "is required"))
        elif len(f.name) > MAX_NAME or "\x00" in f.name:
            problems.append(FieldViolation(f"{here}.name", f"must be at most {MAX_NAME} characters without NUL"))
        elif "" in path_of(f.name):
            problems.append(FieldViolation(f"{here}.name", "a dotted name has a name between every two dots"))
        op = f.operator
        if op == P.PROPERTY_OPERATOR_UNSPECIFIED:
            problems.append(FieldViolation(f"{here}.operator", "is required"))
            continue
        if op not in SUPPORTED:
            problems.append(FieldViolation(f"{here}.operator", f"unknown operator {op}"))
            continue
        value = plain(f.value) if f.HasField("value") else None
        if op == P.PROPERTY_OPERATOR_WITHIN_DISTANCE:
            problems += _circle_problems(f, here)
        elif op in SCALAR_OPS and not _is_scalar(value):
            problems.append(FieldViolation(f"{here}.value", "must be a string, a finite number or a boolean"))
        elif op in ORDERING and not (isinstance(value, str) or (isinstance(value, float) and not isinstance(value, bool))):
            problems.append(FieldViolation(f"{here}.value", "must be a finite number or a string"))
        elif op in STRING_OPS and not isinstance(value, str):
            problems.append(FieldViolation(f"{here}.value", "must be a string"))
        elif op in LIST_OPS:
            if not isinstance(value, list) or not value:
                problems.append(FieldViolation(f"{here}.value", "must be a non-empty list"))
            elif len(value) > MAX_IN_VALUES or not all(_is_scalar(v) for v in value):
                problems.append(FieldViolation(
                    f"{here}.value", f"must list at most {MAX_IN_VALUES} strings, finite numbers or booleans"))
    return problems


def _circle_problems(f: common_pb2.PropertyFilter, here: str) -> list[FieldViolation]:
    if not f.HasField("circle"):
        return [FieldViolation(f"{here}.circle", "is required for WITHIN_DISTANCE")]
    c, out = f.circle, []
    if not (math.isfinite(c.latitude) and -90 <= c.latitude <= 90):
        out.append(FieldViolation(f"{here}.circle.latitude", "must be between -90 and 90"))
    if not (math.isfinite(c.longitude) and -180 <= c.longitude <= 180):
        out.append(FieldViolation(f"{here}.circle.longitude", "must be between -180 and 180"))
    if not (math.isfinite(c.radius_meters) and 0 < c.radius_meters <= MAX_RADIUS_METERS):
        out.append(FieldViolation(f"{here}.circle.radius_meters", "must be above 0 and at most 20,000,000"))
    return out


@dataclass(frozen=True)
class Filter:
    """A validated filter as plain values, compiled once per catalog load."""

    name: str
    operator: int
    value: Any  # plain Python; a list for IN / NOT_IN; (lat, lon, radius) for WITHIN_DISTANCE

    @property
    def path(self) -> tuple[str, ...]:
        return path_of(self.name)


def compile_filter(f: common_pb2.PropertyFilter) -> Filter:
    if f.operator == P.PROPERTY_OPERATOR_WITHIN_DISTANCE:
        value: Any = (f.circle.latitude, f.circle.longitude, f.circle.radius_meters)
    else:
        value = plain(f.value) if f.HasField("value") else None
    return Filter(f.name, int(f.operator), value)


def compile_filters(filters) -> tuple[Filter, ...]:
    return tuple(compile_filter(f) for f in filters)


def lookup(properties: dict[str, Any], name: str) -> Any:
    """The property at the dotted `name`, or `ABSENT`."""
    value: Any = properties
    for part in path_of(name):
        if not isinstance(value, dict) or part not in value:
            return ABSENT
        value = value[part]
    return value


def distance_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance on a sphere of the mean Earth radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_METERS * math.asin(min(1.0, math.sqrt(h)))


def location(value: Any) -> tuple[float, float] | None:
    """(latitude, longitude) of a location property, None when it is not one."""
    if not isinstance(value, dict):
        return None
    lat, lon = value.get("latitude"), value.get("longitude")
    if not (compare.is_number(lat) and compare.is_number(lon)):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return float(lat), float(lon)


def value_test(op: int, actual: Any, expected: Any) -> bool | None:
    """The operators on a present value that property filters share with segmentation's
    attribute conditions (their numbers are the same): whether `actual` passes; None for any
    other operator. `expected` is a list for IN / NOT_IN."""
    if op == P.PROPERTY_OPERATOR_EQUALS:
        return compare.equal(actual, expected)
    if op == P.PROPERTY_OPERATOR_NOT_EQUALS:
        return not compare.equal(actual, expected)
    if op == P.PROPERTY_OPERATOR_IN:
        return any(compare.equal(actual, v) for v in expected)
    if op == P.PROPERTY_OPERATOR_NOT_IN:
        return not any(compare.equal(actual, v) for v in expected)
    if op in ORDERING:
        result = compare.order(actual, expected)
        return result is not None and ORDERING[op](result)
    if op == P.PROPERTY_OPERATOR_CONTAINS:
        return compare.contains(actual, expected)
    if op == P.PROPERTY_OPERATOR_STARTS_WITH:
        return compare.starts_with(actual, expected)
    return None


def matches(f: Filter, properties: dict[str, Any]) -> bool:
    actual = lookup(properties, f.name)
    op = f.operator
    if actual is ABSENT:
        return op in PASS_WHEN_ABSENT
    if op == P.PROPERTY_OPERATOR_EXISTS:
        return actual is not None
    if op == P.PROPERTY_OPERATOR_IS_EMPTY:
        return compare.is_empty(True, actual)
    shared = value_test(op, actual, f.value)
    if shared is not None:
        return shared
    if op == P.PROPERTY_OPERATOR_WITHIN_DISTANCE:
        point = location(actual)
        lat, lon, radius = f.value
        return point is not None and distance_meters(point[0], point[1], lat, lon) <= radius
    return False


def match_all(filters: tuple[Filter, ...], properties: dict[str, Any]) -> bool:
    return all(matches(f, properties) for f in filters)
