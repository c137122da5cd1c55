"""What segmentation knows of one user, as plain data for the rule evaluator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int
    first_at: datetime
    last_at: datetime


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
    # Event name -> its per-day counts.
    events: dict[str, list[DayCount]] = field(default_factory=dict)
