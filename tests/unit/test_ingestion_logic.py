"""Ingestion's pure logic: partition planning, backpressure, grouping of outbox rows into
consumer calls, protobuf framing, lanes and settings."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudgelib.config import ConfigError
from services.ingestion import framing, partitions
from services.ingestion.grouping import group
from services.ingestion.keys import LANES, lane_of, update_id
from services.ingestion.pressure import Limits, Snapshot, assess
from services.ingestion.settings import IngestionSettings

# ---------------------------------------------------------------- partitions


def test_partitions_are_made_ahead_and_dropped_once_wholly_expired():
    now = datetime(2030, 3, 14, 0, 30, tzinfo=timezone.utc)
    existing = [date(2030, 3, 10), date(2030, 3, 11), date(2030, 3, 14)]
    plan = partitions.plan(existing, now, ahead_days=2, retention_days=3)
    assert plan.create == [date(2030, 3, 15), date(2030, 3, 16)]
    # The 10th holds [10th, 11th): every row in it is older than 3 days at 14th 00:30. The
    # 11th still holds rows received after 11th 00:30, younger than 3 days.
    assert plan.drop == [date(2030, 3, 10)]


def test_partition_names_round_trip_and_foreign_tables_are_ignored():
    assert partitions.partition_name(date(2030, 1, 2)) == "events_p20300102"
    assert partitions.partition_day("events_p20300102") == date(2030, 1, 2)
    assert partitions.partition_day("events_default") is None
    assert partitions.partition_day("events_p2030010") is None


@given(st.integers(1, 400), st.integers(0, 10), st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)))
def test_retention_never_drops_a_partition_holding_a_young_event(retention, ahead, naive_now):
    now = naive_now.replace(tzinfo=timezone.utc)
    days = [now.date().fromordinal(now.date().toordinal() - k) for k in range(0, retention + 5)]
    plan = partitions.plan(days, now, ahead, retention)
    for day in plan.drop:
        newest_possible = partitions.day_start(day).replace(hour=23, minute=59, second=59)
        assert (now - newest_possible).days >= retention
    assert now.date() not in plan.drop


# ---------------------------------------------------------------- backpressure

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


# ---------------------------------------------------------------- grouping


def row(id_: int, lane: int, app: str = "a", kind: str = "event") -> dict:
    return {"id": id_, "lane": lane, "app_id": app, "kind": kind}


def test_one_app_one_kind_is_one_call():
    calls = group([row(i, i % LANES) for i in range(40)])
    assert len(calls) == 1 and [r["id"] for r in calls[0].rows] == list(range(40))


def test_a_profile_update_splits_only_its_own_lane():
    rows = [row(1, 0), row(2, 1), row(3, 0, kind="profile"), row(4, 0), row(5, 1)]
    calls = group(rows)
    assert [(c.kind, [r["id"] for r in c.rows]) for c in calls] == [
        ("event", [1, 2, 5]), ("profile", [3]), ("event", [4])]


rows_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["a", "b"]), st.sampled_from(["event", "profile"])),
    max_size=60,
)


@given(rows_strategy)
def test_grouping_replays_every_lane_in_id_order(spec):
    rows = [row(i, lane, app, kind) for i, (lane, app, kind) in enumerate(spec)]
    calls = group(rows)
    sent = [r for c in calls for r in c.rows]
    assert sorted(r["id"] for r in sent) == [r["id"] for r in rows]
    for call in calls:
        assert {(r["app_id"], r["kind"]) for r in call.rows} == {(call.app_id, call.kind)}
    for lane in range(4):
        assert [r["id"] for r in sent if r["lane"] == lane] == [r["id"] for r in rows if r["lane"] == lane]


# ---------------------------------------------------------------- framing and keys


def test_framed_payloads_concatenate_into_a_request():
    events = [common_pb2.Event(event_id=f"e{i}", user_id="u", name="x" * (i * 70)) for i in range(4)]
    framed = [framing.frame_item(e.SerializeToString()) for e in events]
    raw = framing.request_bytes("app_1", framed[:2]) + b"".join(framed[2:])
    for message in (seg_internal.ApplyEventsRequest, decision_internal.ApplyEventsRequest):
        parsed = message.FromString(raw)
        assert parsed.app_id == "app_1" and list(parsed.events) == events


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 40000])
def test_varint_matches_protobuf(n):
    request = seg_internal.ApplyEventsRequest(events=[common_pb2.Event(event_id="x" * n)])
    event_bytes = request.events[0].SerializeToString()
    assert framing.frame_item(event_bytes) == request.SerializeToString()


def test_scrubbing_a_user_out_of_a_payload():
    events = [common_pb2.Event(event_id=f"e{i}", user_id=u) for i, u in enumerate(["a", "b", "a", "c"])]
    payload = b"".join(framing.frame_item(e.SerializeToString()) for e in events)
    kept, remaining = framing.without_user("event", payload, "a")
    assert remaining == 2
    assert [e.event_id for e in seg_internal.ApplyEventsRequest.FromString(kept).events] == ["e1", "e3"]
    update = seg_internal.ProfileUpdate(update_id="x", user_id="a")
    assert framing.without_user("profile", framing.frame_item(update.SerializeToString()), "a") == (b"", 0)


def test_lanes_are_stable_and_spread():
    assert lane_of("app_1", "u1") == lane_of("app_1", "u1")
    assert {lane_of("app_1", f"u{i}") for i in range(500)} == set(range(LANES))
    assert update_id("u1", "r1") == update_id("u1", "r1") != update_id("u2", "r1")


# ---------------------------------------------------------------- settings


def test_settings_defaults_and_overrides():
    assert IngestionSettings.from_env({}) == IngestionSettings()
    s = IngestionSettings.from_env({"NUDGE_INGESTION_EVENT_RETENTION_DAYS": "90",
                                    "NUDGE_INGESTION_MAX_BACKLOG_EVENTS": "5000000",
                                    "NUDGE_INGESTION_MAX_MEMORY_MB": "0"})
    assert (s.event_retention_days, s.max_backlog_events, s.max_memory_mb) == (90, 5_000_000, 0)


@pytest.mark.parametrize("name,value", [
    ("NUDGE_INGESTION_EVENT_RETENTION_DAYS", "0"),
    ("NUDGE_INGESTION_OUTBOX_WORKERS", "many"),
    ("NUDGE_INGESTION_MAX_BACKLOG_AGE_SECONDS", "-1"),
    ("NUDGE_INGESTION_OUTBOX_POLL_SECONDS", "0"),
])
def test_bad_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        IngestionSettings.from_env({name: value})
