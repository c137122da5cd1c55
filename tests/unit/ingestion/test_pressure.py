"""Backpressure: when ingestion refuses events, and why."""

from __future__ import annotations

from services.ingestion.pressure import Limits, Snapshot, assess

LIMITS = Limits(max_backlog_events=100, max_backlog_age=60, max_memory_bytes=1 << 30, retry_after=2.0)


def snapshot(backlog=0, age=0.0, memory=0) -> Snapshot:
    return Snapshot(backlog={"segmentation": backlog, "decision": 0},
                    oldest_age={"segmentation": age, "decision": 0.0}, memory_bytes=memory)


def test_backpressure_bounds():
    assert assess(snapshot(100, 60, 1 << 30), LIMITS) is None
    assert assess(snapshot(backlog=101), LIMITS).reason == "backlog"
    assert assess(snapshot(age=61), LIMITS).reason == "backlog_age"
    refusal = assess(snapshot(memory=(1 << 30) + 1), LIMITS)
    assert (refusal.reason, refusal.retry_after) == ("memory", 2.0)


def test_a_zero_bound_is_disabled():
    off = Limits(0, 0, 0, 1.0)
    assert assess(snapshot(10**9, 10**6, 10**12), off) is None
