"""The day range of daily statistics: ISO dates, both or neither, at most 366 days, bounded
by local midnights in the app's zone (DST-correct)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.delivery.days import MAX_DAYS, bounds, day_range, days


def fields(start: str, end: str, has_times: bool = False) -> set[str]:
    return {p.field for p in day_range(start, end, has_times)[1]}


def test_no_dates_is_no_range_and_each_bad_date_names_its_field():
    assert day_range("", "", True) == (None, [])
    assert day_range("2026-03-01", "2026-03-01", False) == ((date(2026, 3, 1), date(2026, 3, 1)), [])
    assert fields("2026-03-01", "") == {"end_date"}
    assert fields("", "2026-03-01") == {"start_date"}
    assert fields("2026-3-1", "2026-03-01") == {"start_date"}
    assert fields("2026-W01-1", "2026-03-01") == {"start_date"}
    assert fields("2026-03-01", "2026-02-30") == {"end_date"}
    assert fields("2026-03-02", "2026-03-01") == {"end_date"}
    assert fields("2026-03-01", "2026-03-02", has_times=True) == {"start_date"}


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 1, 1)), st.integers(1, 800))
def test_at_most_366_days(first, length):
    last = first + timedelta(days=length - 1)
    assert (fields(first.isoformat(), last.isoformat()) == set()) == (length <= MAX_DAYS)


def test_bounds_are_local_midnights_across_a_dst_change():
    start, end = bounds(date(2026, 3, 7), date(2026, 3, 9), ZoneInfo("America/New_York"))
    assert start.astimezone(timezone.utc) == datetime(2026, 3, 7, 5, tzinfo=timezone.utc)  # EST
    assert end.astimezone(timezone.utc) == datetime(2026, 3, 10, 4, tzinfo=timezone.utc)  # EDT
    assert days(date(2026, 2, 27), date(2026, 3, 1)) == [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)]
