"""Validation of incoming events and profile updates: pure functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudgelib.protoconv import to_datetime
from nudgelib.timezones import is_valid_time_zone

MAX_BATCH = 1000
MAX_EVENT_BYTES = 32 * 1024
MAX_PROPERTY_DEPTH = 5
MAX_ID_LENGTH = 128
MAX_USER_ID_LENGTH = 256
# Producers' clocks drift; events stamped further ahead than this are refused.
MAX_FUTURE_SKEW = timedelta(minutes=5)

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,127}$")
ATTRIBUTE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str


def _depth(value: struct_pb2.Value | struct_pb2.Struct, level: int = 0) -> int:
    if isinstance(value, struct_pb2.Struct):
        return max((_depth(v, level + 1) for v in value.fields.values()), default=level + 1)
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _depth(value.struct_value, level)
    if kind == "list_value":
        return max((_depth(v, level) for v in value.list_value.values), default=level)
    return level


def check_event(event: common_pb2.Event, now: datetime) -> Rejection | None:
    """Why this event cannot be accepted, or None if it can."""
    if not event.event_id:
        return Rejection("MISSING_EVENT_ID", "event_id is required")
    if len(event.event_id) > MAX_ID_LENGTH:
        return Rejection("EVENT_ID_TOO_LONG", f"event_id is longer than {MAX_ID_LENGTH}")
    if not event.user_id:
        return Rejection("MISSING_USER_ID", "user_id is required")
    if len(event.user_id) > MAX_USER_ID_LENGTH:
        return Rejection("USER_ID_TOO_LONG", f"user_id is longer than {MAX_USER_ID_LENGTH}")
    if not NAME_RE.match(event.name):
        return Rejection(
            "INVALID_NAME", "name must start with a letter and hold at most 128 letters, digits, _ . : -"
        )
    if event.HasField("occurred_time"):
        occurred = to_datetime(event.occurred_time)
        if occurred - now > MAX_FUTURE_SKEW:
            return Rejection("FUTURE_TIMESTAMP", "occurred_time is more than 5 minutes in the future")
    if event.ByteSize() > MAX_EVENT_BYTES:
        return Rejection("EVENT_TOO_LARGE", f"event is larger than {MAX_EVENT_BYTES} bytes")
    if _depth(event.properties) > MAX_PROPERTY_DEPTH:
        return Rejection("PROPERTIES_TOO_DEEP", f"properties nest deeper than {MAX_PROPERTY_DEPTH} levels")
    return None


def profile_violations(user_id: str, attributes: dict[str, Any], unset: list[str],
                       time_zone: str, locale: str) -> list[tuple[str, str]]:
    """(field, description) pairs for everything wrong with an Identify call."""
    problems: list[tuple[str, str]] = []
    if not user_id:
        problems.append(("user_id", "is required"))
    elif len(user_id) > MAX_USER_ID_LENGTH:
        problems.append(("user_id", f"is longer than {MAX_USER_ID_LENGTH}"))
    for name, value in attributes.items():
        if not ATTRIBUTE_RE.match(name):
            problems.append((f"attributes[{name!r}]", "name must be letters, digits, _ . - (at most 128)"))
        elif value.WhichOneof("kind") is None:
            problems.append((f"attributes[{name!r}]", "has no value"))
    for i, name in enumerate(unset):
        if not ATTRIBUTE_RE.match(name):
            problems.append((f"unset_attributes[{i}]", "is not a valid attribute name"))
    if time_zone and not is_valid_time_zone(time_zone):
        problems.append(("time_zone", f"unknown IANA time zone {time_zone!r}"))
    if locale and not LOCALE_RE.match(locale):
        problems.append(("locale", f"not a BCP 47 locale: {locale!r}"))
    return problems
