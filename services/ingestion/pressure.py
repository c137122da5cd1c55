"""Backpressure: whether ingestion should refuse new work, from a cheap snapshot.

The snapshot is refreshed periodically by a background task (one query for the outbox, one
read of /proc for memory), so refusing costs a handler nothing but a comparison.

The backlog bounds hold **per app**: an app whose items wait (its consumer calls failing, or a
flood of its own) is refused once its own backlog for a consumer passes a bound, and the
other apps' events are still accepted. The totals per consumer, read from the indexes, are
enough while they stay under the bounds (no app can then be over); only once a total passes a
bound is the backlog broken down by app (`Snapshot.by_app`). Memory is one bound for all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """0 disables a bound."""

    max_backlog_events: int
    max_backlog_age: float  # seconds
    max_memory_bytes: int
    retry_after: float  # seconds suggested to a refused producer


@dataclass(frozen=True)
class Snapshot:
    # Per consumer: undelivered events and profile updates, and the age of the oldest.
    backlog: dict[str, int]
    oldest_age: dict[str, float]
    memory_bytes: int
    # Per consumer, per app: undelivered items and the age of the oldest; read only while a
    # consumer's total passes a bound (an app not listed there waits for nothing).
    by_app: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    reason: str  # backlog | backlog_age | memory
    message: str
    retry_after: float


EMPTY = Snapshot(backlog={}, oldest_age={}, memory_bytes=0)


def over_bounds(snapshot: Snapshot, limits: Limits) -> bool:
    """Whether some consumer's total backlog passes a bound (then `by_app` is needed)."""
    return any(limits.max_backlog_events and n > limits.max_backlog_events for n in snapshot.backlog.values()) \
        or any(limits.max_backlog_age and a > limits.max_backlog_age for a in snapshot.oldest_age.values())


def assess(snapshot: Snapshot, limits: Limits, app_id: str | None = None) -> Refusal | None:
    """Why new work of `app_id` must wait, or None when it may come in. Without an app: the
    totals, as if every waiting item were one app's."""
    if limits.max_memory_bytes and snapshot.memory_bytes > limits.max_memory_bytes:
        return Refusal("memory", f"ingestion is using {snapshot.memory_bytes >> 20} MB of memory, "
                       f"above its bound of {limits.max_memory_bytes >> 20} MB", limits.retry_after)
    if not over_bounds(snapshot, limits):
        return None
    if app_id is None:
        backlog, ages, whose = snapshot.backlog, snapshot.oldest_age, ""
    else:
        backlog = {c: apps.get(app_id, (0, 0.0))[0] for c, apps in snapshot.by_app.items()}
        ages = {c: apps.get(app_id, (0, 0.0))[1] for c, apps in snapshot.by_app.items()}
        whose = "of this app "
    for consumer, pending in sorted(backlog.items()):
        if limits.max_backlog_events and pending > limits.max_backlog_events:
            return Refusal("backlog", f"{pending} events {whose}wait to be forwarded to {consumer}, "
                           f"above the bound of {limits.max_backlog_events}", limits.retry_after)
    for consumer, age in sorted(ages.items()):
        if limits.max_backlog_age and age > limits.max_backlog_age:
            return Refusal("backlog_age", f"the oldest event {whose}waiting for {consumer} is {age:.0f}s old, "
                           f"above the bound of {limits.max_backlog_age:g}s", limits.retry_after)
    return None


def refusals(snapshot: Snapshot, limits: Limits) -> dict[str, Refusal]:
    """The apps refused now, each with why (memory aside: it refuses every app)."""
    apps = {app for per_app in snapshot.by_app.values() for app in per_app}
    found = {app: assess(snapshot, limits, app) for app in sorted(apps)}
    return {app: r for app, r in found.items() if r is not None}


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident memory now (Linux), or 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0
