"""Backpressure: whether ingestion should refuse new work, from a cheap snapshot.

The snapshot is refreshed periodically by a background task (one query for the outbox, one
read of /proc for memory), so refusing costs a handler nothing but a comparison.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


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


@dataclass(frozen=True)
class Refusal:
    reason: str  # backlog | backlog_age | memory
    message: str
    retry_after: float


EMPTY = Snapshot(backlog={}, oldest_age={}, memory_bytes=0)


def assess(snapshot: Snapshot, limits: Limits) -> Refusal | None:
    """Why new work must wait, or None when it may come in."""
    if limits.max_memory_bytes and snapshot.memory_bytes > limits.max_memory_bytes:
        return Refusal("memory", f"ingestion is using {snapshot.memory_bytes >> 20} MB of memory, "
                       f"above its bound of {limits.max_memory_bytes >> 20} MB", limits.retry_after)
    for consumer, pending in sorted(snapshot.backlog.items()):
        if limits.max_backlog_events and pending > limits.max_backlog_events:
            return Refusal("backlog", f"{pending} events wait to be forwarded to {consumer}, "
                           f"above the bound of {limits.max_backlog_events}", limits.retry_after)
    for consumer, age in sorted(snapshot.oldest_age.items()):
        if limits.max_backlog_age and age > limits.max_backlog_age:
            return Refusal("backlog_age", f"the oldest event waiting for {consumer} is {age:.0f}s old, "
                           f"above the bound of {limits.max_backlog_age:g}s", limits.retry_after)
    return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident memory now (Linux), or 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0
