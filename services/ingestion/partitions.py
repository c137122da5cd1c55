"""Which daily partitions of `events` should exist: pure planning, no I/O.

Events are partitioned by the UTC day they were received (not the day they say they
occurred), so a late or back-filled event always lands in a live partition and retention
means "kept N days after it reached us". A day's partition is dropped once every instant in
it is older than the retention; each event is therefore kept at least `retention_days` and
at most one day more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

PREFIX = "events_p"
_NAME = re.compile(r"^events_p(\d{8})$")


@dataclass(frozen=True)
class Plan:
    create: list[date]
    drop: list[date]
    # Past their retention but kept: they still hold items a consumer has not taken.
    kept: list[date] = field(default_factory=list)


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day a partition holds, or None for a table that is not one of ours."""
    found = _NAME.match(name)
    if not found:
        return None
    return datetime.strptime(found.group(1), "%Y%m%d").date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def plan(existing: list[date], now: datetime, ahead_days: int, retention_days: int) -> Plan:
    """Partitions to create (today and `ahead_days` after) and to drop (wholly expired)."""
    today = now.astimezone(timezone.utc).date()
    wanted = [today + timedelta(days=i) for i in range(ahead_days + 1)]
    have = set(existing)
    # Day D holds [D, D+1); every row in it is older than the retention once D+1 <= now - retention.
    cutoff = now - timedelta(days=retention_days)
    drop = sorted(d for d in have if day_start(d + timedelta(days=1)) <= cutoff)
    return Plan(create=[d for d in wanted if d not in have], drop=drop)


def dedupe_cutoff(now: datetime, dedupe_retention_days: int) -> datetime:
    """Dedupe keys received before this instant may be forgotten."""
    return now - timedelta(days=dedupe_retention_days)
