"""Conversions between protobuf messages and plain Python / JSON values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from nudge.common.v1 import common_pb2


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    # Integer arithmetic: exact whatever the instant, and no float round trip.
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def optional_datetime(msg: Any, field: str) -> datetime | None:
    return to_datetime(getattr(msg, field)) if msg.HasField(field) else None


def to_timestamp(dt: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    set_timestamp(ts, dt)
    return ts


def set_timestamp(target: timestamp_pb2.Timestamp, dt: datetime | None) -> None:
    """Timestamp.FromDatetime without its time-tuple round trip (several per context lookup)."""
    if dt is not None:
        if dt.tzinfo is None:
            dt = dt.astimezone(timezone.utc)  # a naive time is local, as astimezone reads it
        delta = dt - _EPOCH
        target.seconds = delta.days * 86400 + delta.seconds
        target.nanos = delta.microseconds * 1000


def to_timedelta(d: duration_pb2.Duration) -> timedelta:
    return timedelta(seconds=d.seconds, microseconds=d.nanos // 1000)


def struct_to_dict(s: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(s)


def dict_to_struct(d: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


# Attribute values are stored as one-key JSON objects so their type survives the round trip
# (JSON alone cannot tell an int from a double, or a time from a string).
_TAGS = {
    "string_value": "s",
    "int_value": "i",
    "double_value": "d",
    "bool_value": "b",
    "time_value": "t",
    "string_list_value": "l",
}


def attribute_to_json(value: common_pb2.AttributeValue) -> dict[str, Any] | None:
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "time_value":
        return {"t": to_datetime(value.time_value).isoformat()}
    if kind == "string_list_value":
        return {"l": list(value.string_list_value.values)}
    return {_TAGS[kind]: getattr(value, kind)}


def attribute_from_json(data: dict[str, Any]) -> common_pb2.AttributeValue:
    value = common_pb2.AttributeValue()
    set_attribute(value, data)
    return value


def set_attribute(target: common_pb2.AttributeValue, data: dict[str, Any]) -> None:
    """Fills `target` (say, a map entry) from a stored attribute, in place."""
    ((tag, raw),) = data.items()
    if tag == "s":
        target.string_value = raw
    elif tag == "i":
        target.int_value = int(raw)
    elif tag == "d":
        target.double_value = float(raw)
    elif tag == "b":
        target.bool_value = bool(raw)
    elif tag == "t":
        set_timestamp(target.time_value, datetime.fromisoformat(raw))
    elif tag == "l":
        target.string_list_value.values.extend(raw)
    else:
        raise ValueError(f"unknown attribute tag {tag!r}")


def attribute_python(data: dict[str, Any]) -> Any:
    """The plain Python value of a stored attribute, for rule evaluation and templates."""
    ((tag, raw),) = data.items()
    if tag == "t":
        return datetime.fromisoformat(raw)
    return raw
