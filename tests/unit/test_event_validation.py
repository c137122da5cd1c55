"""Which events ingestion accepts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf import struct_pb2

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
