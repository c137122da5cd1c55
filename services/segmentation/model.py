"""Segmentation's plain types: what it knows of a user (for the rule evaluator), a segment
definition, and the changes a batch of events or profile updates makes. Pure data: the
store fills and reads them, the rules only read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from nudge.segmentation.v1 import segmentation_service_pb2 as pb


@dataclass(frozen=True)
class Counter:
    """One counter of one user (an event name, or a name with property filters)."""

    total: int
    first_at: datetime
    last_at: datetime
    # UTC day -> events that day. Loaded only from the earliest day a rule of the app can
    # look at, so older days may be missing; `total` always covers everything.
    days: Mapping[date, int] = field(default_factory=dict)


@dataclass
class Profile:
    user_id: str
    known: bool = False
    # Attribute name -> plain Python value (str, int, float, bool, datetime, list[str]).
    attributes: dict[str, Any] = field(default_factory=dict)
    # The same attributes as stored (type-tagged JSON), to hand on without losing the type.
    stored_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_zone: str = ""
    locale: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    platforms: frozenset[int] = frozenset()
    app_version: str = ""
    # Counter key -> counter; a key is absent when the user never performed it.
    counters: dict[str, Counter] = field(default_factory=dict)
    # Stored memberships (segment seqs) and row version; what the last change recorded.
    # `stored` is false when no memberships row exists yet.
    stored: bool = False
    stored_segments: frozenset[int] = frozenset()
    stored_valid_until: datetime | None = None
    version: int = 0


@dataclass(frozen=True)
class SegmentDef:
    id: str
    seq: int
    name: str
    description: str
    rule: pb.Rule
    version: int
    created_at: datetime
    updated_at: datetime
    # The operator's key (Segment.key); '' for none.
    key: str = ""


@dataclass
class Activity:
    """What a batch of events says about one user's profile."""

    first_seen: datetime
    last_seen: datetime
    platforms: set[int]
    app_version: str = ""
    app_version_parts: list[int] | None = None
    app_version_at: datetime | None = None


@dataclass
class AttributeChange:
    """A user's profile updates merged: attributes set and unset (never both for one name),
    and the time zone and locale when given."""

    set: dict[str, dict[str, Any]]
    unset: set[str]
    time_zone: str = ""
    locale: str = ""
