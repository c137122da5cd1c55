"""Property filters on event conditions: what one event matches, and the counter key."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudgelib import filters
from services.segmentation import properties

P = common_pb2.PropertyOperator


def value(v) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if isinstance(v, list):
        out.list_value.values.extend(value(x) for x in v)
    elif isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, str):
        out.string_value = v
    elif v is not None:
        out.number_value = v
    return out


def f(name, op, v=None) -> common_pb2.PropertyFilter:
    out = common_pb2.PropertyFilter(name=name, operator=op)
    if v is not None:
        out.value.CopyFrom(value(v))
    return out


EVENT = {"cart": 150.0, "screen": "checkout", "tags": ["sale", 3.0], "coupon": None, "empty": "", "flag": True}


@pytest.mark.parametrize("flt, expected", [
    (f("cart", P.PROPERTY_OPERATOR_GREATER, 100), True),
    (f("cart", P.PROPERTY_OPERATOR_LESS_OR_EQUAL, 150), True),
    (f("cart", P.PROPERTY_OPERATOR_EQUALS, "150"), False),  # kinds never mix
    (f("screen", P.PROPERTY_OPERATOR_EQUALS, "checkout"), True),
    (f("screen", P.PROPERTY_OPERATOR_GREATER, "b"), True),
    (f("screen", P.PROPERTY_OPERATOR_STARTS_WITH, "check"), True),
    (f("screen", P.PROPERTY_OPERATOR_CONTAINS, "out"), True),
    (f("tags", P.PROPERTY_OPERATOR_CONTAINS, "sale"), True),
    (f("tags", P.PROPERTY_OPERATOR_CONTAINS, "3"), False),
    (f("screen", P.PROPERTY_OPERATOR_IN, ["home", "checkout"]), True),
    (f("missing", P.PROPERTY_OPERATOR_NOT_IN, ["home"]), True),
    (f("missing", P.PROPERTY_OPERATOR_NOT_EQUALS, "home"), True),
    (f("flag", P.PROPERTY_OPERATOR_EQUALS, 1), False),
    (f("flag", P.PROPERTY_OPERATOR_EQUALS, True), True),
    (f("coupon", P.PROPERTY_OPERATOR_EXISTS), False),  # null is not there
    (f("coupon", P.PROPERTY_OPERATOR_IS_EMPTY), True),
    (f("empty", P.PROPERTY_OPERATOR_IS_EMPTY), True),
    (f("cart", P.PROPERTY_OPERATOR_IS_EMPTY), False),
    (f("missing", P.PROPERTY_OPERATOR_GREATER, 1), False),
])
def test_one_filter_on_one_event(flt, expected):
    (compiled,) = filters.compile_filters([flt])
    assert filters.matches(compiled, EVENT) is expected


def test_counter_key_ignores_filter_order_and_tells_filters_apart():
    a = f("cart", P.PROPERTY_OPERATOR_GREATER, 100)
    b = f("screen", P.PROPERTY_OPERATOR_EQUALS, "checkout")
    key = properties.counter_key("buy", filters.compile_filters([a, b]))
    assert key == properties.counter_key("buy", filters.compile_filters([b, a]))
    assert key != properties.counter_key("buy", filters.compile_filters([a]))
    assert properties.counter_key("buy", ()) == "buy"
    assert properties.event_name(key) == "buy"
