"""Validation of incoming events and profile updates: pure functions, no I/O.

Beyond the documented limits, everything accepted here must be storable and forwardable as
is: PostgreSQL text refuses NUL characters and JSON has no NaN, so an event or attribute
carrying them is refused here rather than failing its whole batch in a database or
poisoning a consumer later.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from nudge.common.v1 import common_pb2
from nudgelib.event_times import FUTURE_RULE, MAX_FUTURE_SKEW
from nudgelib.names import EVENT_NAME_RULE, is_event_name
from nudgelib.timezones import is_valid_time_zone

MAX_BATCH = 1000
MAX_EVENT_BYTES = 32 * 1024
MAX_PROPERTY_DEPTH = 5
MAX_ID_LENGTH = 128
MAX_USER_ID_LENGTH = 256
MAX_VERSION_LENGTH = 64
MAX_SESSION_ID_LENGTH = 128
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_STRING = 1024
MAX_ATTRIBUTE_LIST = 100
_MAX_FUTURE_SKEW_SECONDS = MAX_FUTURE_SKEW.total_seconds()
_FUTURE_MESSAGE = f"occurred_time {FUTURE_RULE}"

ATTRIBUTE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")

PLATFORMS = frozenset(common_pb2.Platform.values())
# google.protobuf.Timestamp's documented range: 0001-01-01 to 9999-12-31.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str


def valid_timestamp(ts: timestamp_pb2.Timestamp) -> bool:
    return _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos < 1_000_000_000


def _has_nul(text: str) -> bool:
    return "\x00" in text


def _walk_struct(struct: struct_pb2.Struct, level: int) -> tuple[int, str | None]:
    """(deepest nesting level, first problem) of the properties in `struct`, which sits at
    `level`. Written flat (scalars handled inline), since it runs for every event."""
    deepest = level + 1
    fields = struct.fields
    for key in fields:
        if "\x00" in key:
            return deepest, "a property name holds a NUL character"
        depth, problem = _walk_value(fields[key], level + 1)
        if problem:
            return depth, problem
        if depth > deepest:
            deepest = depth
    return deepest, None


def _walk_value(value: struct_pb2.Value, level: int) -> tuple[int, str | None]:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        if "\x00" in value.string_value:
            return level, "a property string holds a NUL character"
    elif kind == "number_value":
        if not math.isfinite(value.number_value):
            return level, "a property number is NaN or infinite"
    elif kind == "struct_value":
        return _walk_struct(value.struct_value, level)
    elif kind == "list_value":
        deepest = level
        for item in value.list_value.values:
            depth, problem = _walk_value(item, level)
            if problem:
                return depth, problem
            if depth > deepest:
                deepest = depth
        return deepest, None
    return level, None


def check_event(event: common_pb2.Event, now: datetime) -> Rejection | None:
    """Why this event cannot be accepted, or None if it can. Each field is read once (every
    read of a protobuf field makes a new Python object, and this runs for every event)."""
    event_id = event.event_id
    if not event_id:
        return Rejection("MISSING_EVENT_ID", "event_id is required")
    if len(event_id) > MAX_ID_LENGTH:
        return Rejection("EVENT_ID_TOO_LONG", f"event_id is longer than {MAX_ID_LENGTH}")
    if "\x00" in event_id:
        return Rejection("INVALID_EVENT_ID", "event_id holds a NUL character")
    user_id = event.user_id
    if not user_id:
        return Rejection("MISSING_USER_ID", "user_id is required")
    if len(user_id) > MAX_USER_ID_LENGTH:
        return Rejection("USER_ID_TOO_LONG", f"user_id is longer than {MAX_USER_ID_LENGTH}")
    if "\x00" in user_id:
        return Rejection("INVALID_USER_ID", "user_id holds a NUL character")
    if not is_event_name(event.name):
        return Rejection("INVALID_NAME", f"name {EVENT_NAME_RULE}")
    if event.HasField("occurred_time"):
        ts = event.occurred_time
        if not valid_timestamp(ts):
            return Rejection("INVALID_TIMESTAMP", "occurred_time is outside 0001-01-01..9999-12-31")
        if ts.seconds + ts.nanos * 1e-9 - now.timestamp() > _MAX_FUTURE_SKEW_SECONDS:
            return Rejection("FUTURE_TIMESTAMP", _FUTURE_MESSAGE)
    if event.platform not in PLATFORMS:
        return Rejection("INVALID_PLATFORM", f"platform {event.platform} is not a known Platform")
    app_version = event.app_version
    if app_version and (len(app_version) > MAX_VERSION_LENGTH or "\x00" in app_version):
        return Rejection("INVALID_APP_VERSION", f"app_version must be at most {MAX_VERSION_LENGTH} "
                         "characters without NUL")
    session_id = event.session_id
    if session_id and (len(session_id) > MAX_SESSION_ID_LENGTH or "\x00" in session_id):
        return Rejection("INVALID_SESSION_ID", f"session_id must be at most {MAX_SESSION_ID_LENGTH} "
                         "characters without NUL")
    if event.ByteSize() > MAX_EVENT_BYTES:
        return Rejection("EVENT_TOO_LARGE", f"event is larger than {MAX_EVENT_BYTES} bytes")
    depth, problem = _walk_struct(event.properties, 0)
    if depth > MAX_PROPERTY_DEPTH:
        return Rejection("PROPERTIES_TOO_DEEP", f"properties nest deeper than {MAX_PROPERTY_DEPTH} levels")
    if problem:
        return Rejection("INVALID_PROPERTY", problem)
    return None


def _attribute_problem(value: common_pb2.AttributeValue) -> str | None:
    kind = value.WhichOneof("kind")
    if kind is None:
        return "has no value"
    if kind == "string_value":
        text = value.string_value
        if len(text) > MAX_ATTRIBUTE_STRING or _has_nul(text):
            return f"must be at most {MAX_ATTRIBUTE_STRING} characters without NUL"
    elif kind == "double_value" and not math.isfinite(value.double_value):
        return "must be a finite number"
    elif kind == "time_value" and not valid_timestamp(value.time_value):
        return "is outside 0001-01-01..9999-12-31"
    elif kind == "string_list_value":
        items = value.string_list_value.values
        if len(items) > MAX_ATTRIBUTE_LIST:
            return f"holds more than {MAX_ATTRIBUTE_LIST} strings"
        if any(len(s) > MAX_ATTRIBUTE_STRING or _has_nul(s) for s in items):
            return f"strings must be at most {MAX_ATTRIBUTE_STRING} characters without NUL"
    return None


def user_id_problem(user_id: str) -> str | None:
    if not user_id:
        return "is required"
    if len(user_id) > MAX_USER_ID_LENGTH:
        return f"is longer than {MAX_USER_ID_LENGTH}"
    if _has_nul(user_id):
        return "holds a NUL character"
    return None


def profile_violations(user_id: str, attributes: dict[str, Any], unset: list[str],
                       time_zone: str, locale: str,
                       occurred_time: timestamp_pb2.Timestamp | None = None,
                       request_id: str = "") -> list[tuple[str, str]]:
    """(field, description) pairs for everything wrong with an Identify call."""
    problems: list[tuple[str, str]] = []
    if (problem := user_id_problem(user_id)) is not None:
        problems.append(("user_id", problem))
    if len(attributes) > MAX_ATTRIBUTES:
        problems.append(("attributes", f"at most {MAX_ATTRIBUTES} attributes per call"))
    for name, value in attributes.items():
        if not ATTRIBUTE_RE.match(name):
            problems.append((f"attributes[{name!r}]", "name must be letters, digits, _ . - (at most 128)"))
        elif (problem := _attribute_problem(value)) is not None:
            problems.append((f"attributes[{name!r}]", problem))
    for i, name in enumerate(unset):
        if not ATTRIBUTE_RE.match(name):
            problems.append((f"unset_attributes[{i}]", "is not a valid attribute name"))
    if time_zone and not is_valid_time_zone(time_zone):
        problems.append(("time_zone", f"unknown IANA time zone {time_zone!r}"))
    if locale and not LOCALE_RE.match(locale):
        problems.append(("locale", f"not a BCP 47 locale: {locale!r}"))
    if occurred_time is not None and not valid_timestamp(occurred_time):
        problems.append(("occurred_time", "is outside 0001-01-01..9999-12-31"))
    if len(request_id) > MAX_ID_LENGTH or _has_nul(request_id):
        problems.append(("request_id", f"must be at most {MAX_ID_LENGTH} characters without NUL"))
    return problems
