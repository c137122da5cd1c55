"""Conversions between protobuf messages and plain Python / JSON values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from nudge.common.v1 import common_pb2


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def optional_datetime(msg: Any, field: str) -> datetime | None:
    return to_datetime(getattr(msg, field)) if msg.HasField(field) else None


def to_timestamp(dt: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt.astimezone(timezone.utc))
    return ts


def set_timestamp(target: timestamp_pb2.Timestamp, dt: datetime | None) -> None:
    if dt is not None:
        target.FromDatetime(dt.astimezone(timezone.utc))


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
    ((tag, raw),) = data.items()
    if tag == "s":
        return common_pb2.AttributeValue(string_value=raw)
    if tag == "i":
        return common_pb2.AttributeValue(int_value=int(raw))
    if tag == "d":
        return common_pb2.AttributeValue(double_value=float(raw))
    if tag == "b":
        return common_pb2.AttributeValue(bool_value=bool(raw))
    if tag == "t":
        return common_pb2.AttributeValue(time_value=to_timestamp(datetime.fromisoformat(raw)))
    if tag == "l":
        return common_pb2.AttributeValue(string_list_value=common_pb2.StringList(values=raw))
    raise ValueError(f"unknown attribute tag {tag!r}")


def attribute_python(data: dict[str, Any]) -> Any:
    """The plain Python value of a stored attribute, for rule evaluation and templates."""
    ((tag, raw),) = data.items()
    if tag == "t":
        return datetime.fromisoformat(raw)
    return raw
