"""Backpressure per app: one app's stuck backlog refuses that app only."""

from __future__ import annotations

from services.ingestion.pressure import Limits, Snapshot, assess, refusals

LIMITS = Limits(max_backlog_events=100, max_backlog_age=60, max_memory_bytes=1 << 30, retry_after=2.0)


def test_only_the_app_over_a_bound_is_refused():
    snapshot = Snapshot(backlog={"decision": 150}, oldest_age={"decision": 5.0}, memory_bytes=0,
                        by_app={"decision": {"stuck": (120, 5.0), "busy": (30, 1.0)}})
    assert assess(snapshot, LIMITS, "stuck").reason == "backlog"
    assert assess(snapshot, LIMITS, "busy") is None
    assert assess(snapshot, LIMITS, "quiet") is None
    assert list(refusals(snapshot, LIMITS)) == ["stuck"]


def test_an_old_backlog_refuses_the_app_it_belongs_to():
    snapshot = Snapshot(backlog={"decision": 3}, oldest_age={"decision": 90.0}, memory_bytes=0,
                        by_app={"decision": {"stuck": (1, 90.0), "busy": (2, 0.5)}})
    assert assess(snapshot, LIMITS, "stuck").reason == "backlog_age"
    assert assess(snapshot, LIMITS, "busy") is None


def test_under_the_bounds_no_breakdown_is_needed_and_memory_refuses_everyone():
    calm = Snapshot(backlog={"decision": 100}, oldest_age={"decision": 60.0}, memory_bytes=0)
    assert assess(calm, LIMITS, "any") is None
    full = Snapshot(backlog={}, oldest_age={}, memory_bytes=(1 << 30) + 1)
    assert assess(full, LIMITS, "any").reason == "memory"
