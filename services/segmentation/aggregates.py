"""Folding a batch of events (and of profile updates) into what the store adds: pure, so
the counting rules are testable without a database."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudgelib.filters import Filter, match_all, plain_struct
from nudgelib.protoconv import attribute_to_json, to_datetime
from nudgelib.versions import parse_version
from services.segmentation.model import Activity, AttributeChange


@dataclass
class Folded:
    users: dict[str, Activity] = field(default_factory=dict)
    # (user, counter key, UTC day) -> events
    days: dict[tuple[str, str, date], int] = field(default_factory=dict)
    # (user, counter key) -> [events, first, last]
    totals: dict[tuple[str, str], list] = field(default_factory=dict)

    def count(self, user_id: str, key: str, at: datetime) -> None:
        """One event of the user at `at` under the counter `key`."""
        day_key = (user_id, key, at.date())
        self.days[day_key] = self.days.get(day_key, 0) + 1
        total = self.totals.get((user_id, key))
        if total is None:
            self.totals[(user_id, key)] = [1, at, at]
        else:
            total[0] += 1
            total[1], total[2] = min(total[1], at), max(total[2], at)


def unique(items: list, id_of: Callable[[Any], str] = lambda e: e.event_id) -> list:
    """The first item of each id (a batch may repeat one)."""
    seen: set[str] = set()
    out = []
    for item in items:
        if id_of(item) not in seen:
            seen.add(id_of(item))
            out.append(item)
    return out


def _occurred(e: common_pb2.Event, now: datetime) -> datetime:
    # An event without a time (ingestion always sets one) happened now.
    return to_datetime(e.occurred_time) if e.HasField("occurred_time") else now


def fold_events(events: list[common_pb2.Event], counters_for: Callable[[str, struct_pb2.Struct], list[str]],
                now: datetime) -> Folded:
    """counters_for(name, properties): the counters an event adds to (its name and the
    property-filtered counters it matches)."""
    out = Folded()
    for e in events:
        at = _occurred(e, now)
        for key in counters_for(e.name, e.properties):
            out.count(e.user_id, key, at)
        u = out.users.get(e.user_id)
        if u is None:
            u = out.users[e.user_id] = Activity(at, at, set())
        u.first_seen, u.last_seen = min(u.first_seen, at), max(u.last_seen, at)
        if e.platform:
            u.platforms.add(int(e.platform))
        # The app version of the latest event wins (the later one in the batch on a tie).
        if e.app_version and (u.app_version_at is None or at >= u.app_version_at):
            u.app_version, u.app_version_at = e.app_version, at
            parts = parse_version(e.app_version)
            u.app_version_parts = list(parts) if parts is not None else None
    return out


def count_past(out: Folded, events: Iterable[common_pb2.Event],
               wanted: Mapping[str, Sequence[tuple[str, tuple[Filter, ...]]]], now: datetime) -> None:
    """Adds to `out` the events that match new property-filtered counters: `wanted` maps an
    event name to its new counters (key, filters). Filters are matched exactly as the live
    path matches them (nudgelib.filters), so a counter filled from the past agrees with one
    fed as events arrive."""
    for e in events:
        counters = wanted.get(e.name)
        if not counters:
            continue
        props = plain_struct(e.properties)
        at = _occurred(e, now)
        for key, compiled in counters:
            if match_all(compiled, props):
                out.count(e.user_id, key, at)


def merge_updates(updates: list[internal_pb.ProfileUpdate]) -> dict[str, AttributeChange]:
    """Several updates of one user, merged in order (one statement cannot touch a row twice)."""
    merged: dict[str, AttributeChange] = {}
    for u in updates:
        m = merged.setdefault(u.user_id, AttributeChange({}, set()))
        for name in u.unset_attributes:
            m.set.pop(name, None)
            m.unset.add(name)
        for name, value in u.attributes.items():
            stored = attribute_to_json(value)
            if stored is None:  # no value at all: nothing to set
                continue
            m.set[name] = stored
            m.unset.discard(name)
        m.time_zone = u.time_zone or m.time_zone
        m.locale = u.locale or m.locale
    return merged
