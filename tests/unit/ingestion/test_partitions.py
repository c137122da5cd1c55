"""Partition planning: made ahead, dropped only once every row in them has expired."""

from __future__ import annotations

from datetime import date, datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.ingestion import partitions


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
