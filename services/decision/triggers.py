"""Which triggered campaigns an event fires, and which pending sends it cancels: pure.

Property filters compare the event's property (dotted names reach into nested objects) with
the filter's value: numbers as numbers, everything else by equality; a missing property
fails every filter except NOT_EQUALS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import json_format

from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_timedelta

P = pb.PropertyOperator
_MISSING = object()


def _lookup(properties: dict[str, Any], name: str) -> Any:
    value: Any = properties
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def matches_filter(f: pb.PropertyFilter, properties: dict[str, Any]) -> bool:
    actual = _lookup(properties, f.name)
    op = f.operator
    if op == P.PROPERTY_OPERATOR_EXISTS:
        return actual is not _MISSING
    expected = json_format.MessageToDict(f.value) if f.HasField("value") else None
    if actual is _MISSING:
        return op == P.PROPERTY_OPERATOR_NOT_EQUALS
    if op == P.PROPERTY_OPERATOR_EQUALS:
        a, e = _number(actual), _number(expected)
        return a == e if a is not None and e is not None else actual == expected
    if op == P.PROPERTY_OPERATOR_NOT_EQUALS:
        a, e = _number(actual), _number(expected)
        return a != e if a is not None and e is not None else actual != expected
    if op == P.PROPERTY_OPERATOR_CONTAINS:
        if isinstance(actual, list):
            return expected in actual
        return isinstance(actual, str) and isinstance(expected, str) and expected in actual
    a, e = _number(actual), _number(expected)
    if a is None or e is None:
        if isinstance(actual, str) and isinstance(expected, str):
            a, e = actual, expected  # type: ignore[assignment]
        else:
            return False
    if op == P.PROPERTY_OPERATOR_GREATER:
        return a > e
    if op == P.PROPERTY_OPERATOR_GREATER_OR_EQUAL:
        return a >= e
    if op == P.PROPERTY_OPERATOR_LESS:
        return a < e
    if op == P.PROPERTY_OPERATOR_LESS_OR_EQUAL:
        return a <= e
    return False


@dataclass(frozen=True)
class Firing:
    """A triggered campaign to send to a user at `due`."""

    campaign: pb.Campaign
    trigger_index: int
    due: datetime


def fired_by_event(campaigns: Iterable[pb.Campaign], name: str, properties: dict[str, Any],
                   occurred: datetime) -> list[Firing]:
    """Each triggered campaign fires at most once per event, by its first matching trigger."""
    found = []
    for campaign in campaigns:
        if campaign.delivery_mode != pb.DELIVERY_MODE_TRIGGERED:
            continue
        for i, trigger in enumerate(campaign.triggers):
            if trigger.WhichOneof("source") == "event_name" and trigger.event_name == name and all(
                    matches_filter(f, properties) for f in trigger.property_filters):
                found.append(Firing(campaign, i, occurred + to_timedelta(trigger.delay)))
                break
    return found


def fired_by_segment_entry(campaigns: Iterable[pb.Campaign], segment_ids: Iterable[str],
                           at: datetime) -> list[Firing]:
    entered = set(segment_ids)
    found = []
    for campaign in campaigns:
        if campaign.delivery_mode != pb.DELIVERY_MODE_TRIGGERED:
            continue
        for i, trigger in enumerate(campaign.triggers):
            if trigger.WhichOneof("source") == "segment_entered_id" and trigger.segment_entered_id in entered:
                found.append(Firing(campaign, i, at + to_timedelta(trigger.delay)))
                break
    return found


def cancels(campaign: pb.Campaign, trigger_index: int, event_name: str) -> bool:
    """Whether performing `event_name` cancels a pending send of this campaign's trigger."""
    if trigger_index >= len(campaign.triggers):
        return False
    return event_name in campaign.triggers[trigger_index].exception_events


def expiry(campaign: pb.Campaign, due: datetime, default_ttl: timedelta) -> datetime:
    """A pending message expires its time-to-live after it comes due."""
    return due + (to_timedelta(campaign.message_ttl) or default_ttl)
