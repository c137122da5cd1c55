"""Which events ingestion accepts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf import struct_pb2, timestamp_pb2

from nudge.common.v1 import common_pb2
from nudgelib.protoconv import to_timestamp
from services.ingestion.validation import check_event, profile_violations

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def reason(**kw) -> str | None:
    e = common_pb2.Event(**{"event_id": "e", "user_id": "u", "name": "open", **kw})
    found = check_event(e, NOW)
    return found.reason if found else None


def test_valid_event():
    assert reason() is None
    assert reason(occurred_time=to_timestamp(NOW + timedelta(minutes=4))) is None


def test_rejections():
    assert reason(event_id="") == "MISSING_EVENT_ID"
    assert reason(user_id="") == "MISSING_USER_ID"
    assert reason(name="has space") == "INVALID_NAME"
    assert reason(occurred_time=to_timestamp(NOW + timedelta(minutes=6))) == "FUTURE_TIMESTAMP"
    assert reason(event_id="x" * 129) == "EVENT_ID_TOO_LONG"


def test_properties_depth_and_size():
    deep = struct_pb2.Struct()
    deep.update({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})
    assert reason(properties=deep) == "PROPERTIES_TOO_DEEP"
    big = struct_pb2.Struct()
    big.update({"blob": "x" * 40_000})
    assert reason(properties=big) == "EVENT_TOO_LARGE"


def test_profile_violations():
    assert profile_violations("u", {}, ["ok", "bad name"], "Europe/Paris", "fr-FR") == [
        ("unset_attributes[1]", "is not a valid attribute name")]
    assert [f for f, _ in profile_violations("", {}, [], "Not/AZone", "!!")] == ["user_id", "time_zone", "locale"]


def test_what_storage_or_consumers_could_not_take_is_refused():
    # NUL bytes fail PostgreSQL text, NaN fails JSON; refused here, never failing a batch later.
    assert reason(user_id="u\x00") == "INVALID_USER_ID"
    assert reason(event_id="e\x00") == "INVALID_EVENT_ID"
    assert reason(platform=99) == "INVALID_PLATFORM"
    assert reason(app_version="v" * 65) == "INVALID_APP_VERSION"
    assert reason(session_id="s\x00") == "INVALID_SESSION_ID"
    for bad in ({"x": float("nan")}, {"x": [1, float("inf")]}, {"x": {"y": "a\x00b"}}, {"a\x00": 1}):
        props = struct_pb2.Struct()
        props.update(bad)
        assert reason(properties=props) == "INVALID_PROPERTY", bad
    assert reason(occurred_time=timestamp_pb2.Timestamp(seconds=10**12)) == "INVALID_TIMESTAMP"
    assert reason(occurred_time=timestamp_pb2.Timestamp(seconds=0, nanos=-1)) == "INVALID_TIMESTAMP"


def test_nesting_is_counted_through_lists():
    ok, deep = struct_pb2.Struct(), struct_pb2.Struct()
    ok.update({"a": [{"b": {"c": {"d": {"e": 1}}}}]})
    deep.update({"a": [{"b": {"c": {"d": {"e": {"f": 1}}}}}]})
    assert reason(properties=ok) is None
    assert reason(properties=deep) == "PROPERTIES_TOO_DEEP"


def test_identify_values_must_be_storable():
    bad = {
        "s": common_pb2.AttributeValue(string_value="a\x00"),
        "d": common_pb2.AttributeValue(double_value=float("nan")),
        "l": common_pb2.AttributeValue(string_list_value=common_pb2.StringList(values=["x"] * 101)),
    }
    fields = [f for f, _ in profile_violations("u", bad, [], "", "")]
    assert fields == ["attributes['s']", "attributes['d']", "attributes['l']"]
    too_many = {f"a{i}": common_pb2.AttributeValue(int_value=i) for i in range(101)}
    assert [f for f, _ in profile_violations("u", too_many, [], "", "")] == ["attributes"]
    assert [f for f, _ in profile_violations("u\x00", {}, [], "", "", request_id="r" * 129)] == [
        "user_id", "request_id"]
