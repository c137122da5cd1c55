"""Timestamps and typed attributes keep their exact value through protobuf."""

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2

from nudgelib.protoconv import attribute_from_json, attribute_to_json, to_datetime, to_timestamp

INSTANTS = [
    datetime(2026, 11, 25, 6, 53, 46, 123457, tzinfo=timezone.utc),
    datetime(2026, 11, 25, 8, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))),
    datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=timezone.utc),
    datetime(1970, 1, 1, tzinfo=timezone.utc),
]


@pytest.mark.parametrize("instant", INSTANTS)
def test_a_timestamp_matches_protobufs_own_conversion_and_round_trips_to_the_microsecond(instant):
    reference = timestamp_pb2.Timestamp()
    reference.FromDatetime(instant)
    ours = to_timestamp(instant)
    assert (ours.seconds, ours.nanos) == (reference.seconds, reference.nanos)
    assert to_datetime(ours) == instant


def test_every_attribute_kind_round_trips():
    for stored in ({"s": "gold"}, {"i": 42}, {"d": 2.5}, {"b": True}, {"l": ["a", "b"]},
                   {"t": "2026-11-25T06:53:46.123457+00:00"}):
        assert attribute_to_json(attribute_from_json(stored)) == stored


def test_an_unknown_attribute_tag_is_refused():
    with pytest.raises(ValueError):
        attribute_from_json({"x": 1})
