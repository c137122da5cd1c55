"""The one property-filter language: dotted paths, absent properties, kinds, distance, and
validation that names the field."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from nudge.common.v1 import common_pb2
from nudgelib import filters

P = common_pb2.PropertyOperator
PARIS_NOTRE_DAME = (48.852968, 2.349902)


def f(name: str, op: int, value=None, circle: tuple[float, float, float] | None = None) -> common_pb2.PropertyFilter:
    out = common_pb2.PropertyFilter(name=name, operator=op)
    if value is not None:
        s = struct_pb2.Struct()
        s.update({"v": value})
        out.value.CopyFrom(s.fields["v"])
    if circle is not None:
        out.circle.CopyFrom(common_pb2.GeoCircle(latitude=circle[0], longitude=circle[1], radius_meters=circle[2]))
    return out


def matches(flt: common_pb2.PropertyFilter, properties: dict) -> bool:
    return filters.matches(filters.compile_filter(flt), properties)


def test_dots_reach_into_nested_objects():
    city = f("address.city", P.PROPERTY_OPERATOR_EQUALS, "Paris")
    assert matches(city, {"address": {"city": "Paris"}})
    assert not matches(city, {"address.city": "Paris"})  # a dot is always a step, never part of a name
    assert not matches(city, {"address": "Paris"})  # the path runs into a string: absent


@pytest.mark.parametrize("op, value, passes", [
    (P.PROPERTY_OPERATOR_EQUALS, "x", False), (P.PROPERTY_OPERATOR_NOT_EQUALS, "x", True),
    (P.PROPERTY_OPERATOR_GREATER, 1, False), (P.PROPERTY_OPERATOR_LESS, 1, False),
    (P.PROPERTY_OPERATOR_IN, ["x"], False), (P.PROPERTY_OPERATOR_NOT_IN, ["x"], True),
    (P.PROPERTY_OPERATOR_CONTAINS, "x", False), (P.PROPERTY_OPERATOR_STARTS_WITH, "x", False),
    (P.PROPERTY_OPERATOR_EXISTS, None, False), (P.PROPERTY_OPERATOR_IS_EMPTY, None, True),
])
def test_an_absent_property_passes_only_the_negative_operators(op, value, passes):
    assert matches(f("missing.deep", op, value), {"other": 1}) is passes


def test_kinds_never_mix_and_numbers_compare_as_numbers():
    assert not matches(f("v", P.PROPERTY_OPERATOR_EQUALS, "5"), {"v": 5.0})
    assert not matches(f("v", P.PROPERTY_OPERATOR_EQUALS, True), {"v": 1.0})
    assert matches(f("v", P.PROPERTY_OPERATOR_GREATER, 100), {"v": 100.5})
    assert not matches(f("v", P.PROPERTY_OPERATOR_GREATER, 100), {"v": "lots"})
    assert matches(f("v", P.PROPERTY_OPERATOR_LESS, "b"), {"v": "a"})
    assert matches(f("tags", P.PROPERTY_OPERATOR_CONTAINS, "sale"), {"tags": ["new", "sale"]})
    assert matches(f("v", P.PROPERTY_OPERATOR_IS_EMPTY), {"v": None})
    assert not matches(f("v", P.PROPERTY_OPERATOR_EXISTS), {"v": None})


def test_within_distance_of_a_point():
    near_store = f("location", P.PROPERTY_OPERATOR_WITHIN_DISTANCE, circle=(*PARIS_NOTRE_DAME, 500))
    saint_michel = {"location": {"latitude": 48.853500, "longitude": 2.344000}}  # about 440 m west
    louvre = {"location": {"latitude": 48.860611, "longitude": 2.337644}}  # about 1.2 km
    assert matches(near_store, saint_michel)
    assert not matches(near_store, louvre)
    assert not matches(near_store, {"location": "Paris"})
    assert not matches(near_store, {"location": {"latitude": 200, "longitude": 2.3}})
    assert not matches(near_store, {})


def test_distances_are_great_circle_metres():
    assert filters.distance_meters(0, 0, 0, 1) == pytest.approx(111_195, rel=1e-4)
    # Paris to New York, about 5,837 km on the sphere.
    assert filters.distance_meters(48.8566, 2.3522, 40.7128, -74.0060) == pytest.approx(5_837_000, rel=2e-3)


@given(st.floats(-89, 89), st.floats(-179, 179), st.floats(1, 1_000_000))
def test_the_centre_is_always_within_its_circle(lat, lon, radius):
    assert matches(f("p", P.PROPERTY_OPERATOR_WITHIN_DISTANCE, circle=(lat, lon, radius)),
                   {"p": {"latitude": lat, "longitude": lon}})


def test_validation_names_each_field():
    bad = [
        f("", P.PROPERTY_OPERATOR_EQUALS, "x"),
        f("a..b", P.PROPERTY_OPERATOR_EQUALS, "x"),
        f("v", P.PROPERTY_OPERATOR_UNSPECIFIED),
        f("v", P.PROPERTY_OPERATOR_EQUALS),
        f("v", P.PROPERTY_OPERATOR_GREATER, True),
        f("v", P.PROPERTY_OPERATOR_IN, []),
        f("v", P.PROPERTY_OPERATOR_WITHIN_DISTANCE),
        f("v", P.PROPERTY_OPERATOR_WITHIN_DISTANCE, circle=(91, 0, 0)),
    ]
    assert [v.field for v in filters.validate(bad, "t.property_filters")] == [
        "t.property_filters[0].name", "t.property_filters[1].name", "t.property_filters[2].operator",
        "t.property_filters[3].value", "t.property_filters[4].value", "t.property_filters[5].value",
        "t.property_filters[6].circle", "t.property_filters[7].circle.latitude",
        "t.property_filters[7].circle.radius_meters",
    ]
    assert filters.validate([f("a.b", P.PROPERTY_OPERATOR_EXISTS)], "x") == []
    assert [v.field for v in filters.validate([f("v", P.PROPERTY_OPERATOR_EXISTS)] * 11, "x")] == ["x"]


def test_struct_values_become_plain_python():
    s = struct_pb2.Struct()
    s.update({"n": 1, "s": "x", "l": [1, "a"], "o": {"k": True}})
    assert filters.plain_struct(s) == {"n": 1.0, "s": "x", "l": [1.0, "a"], "o": {"k": True}}


def test_property_operators_keep_the_numbers_of_segment_attribute_operators():
    """Segments store filters as protos: a stored number must mean the same operator in both."""
    from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb

    for name, number in common_pb2.PropertyOperator.items():
        if name == "PROPERTY_OPERATOR_WITHIN_DISTANCE":
            continue
        assert seg_pb.AttributeOperator.Value(name.replace("PROPERTY_", "ATTRIBUTE_")) == number
