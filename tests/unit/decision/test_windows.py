"""Send windows in the user's local time, with a fixed clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision import windows

UTC = timezone.utc
PARIS, NEW_YORK, TOKYO = windows.zone("Europe/Paris"), windows.zone("America/New_York"), windows.zone("Asia/Tokyo")
DAYTIME = pb.SendWindow(start_minute=9 * 60, end_minute=21 * 60)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


class TestWindows:
    def test_nine_to_nine_in_two_time_zones(self):
        now = at(2026, 11, 25, 12, 0)  # 13:00 in Paris, 07:00 in New York
        assert windows.is_open(DAYTIME, PARIS, now)
        assert not windows.is_open(DAYTIME, NEW_YORK, now)
        assert windows.next_opening(DAYTIME, NEW_YORK, now) == at(2026, 11, 25, 14, 0)
        assert windows.next_opening(DAYTIME, PARIS, now) == now

    def test_end_is_exclusive(self):
        assert windows.is_open(DAYTIME, PARIS, at(2026, 11, 25, 19, 59))  # 20:59 Paris
        assert not windows.is_open(DAYTIME, PARIS, at(2026, 11, 25, 20, 0))  # 21:00 Paris
        assert windows.next_opening(DAYTIME, PARIS, at(2026, 11, 25, 20, 0)) == at(2026, 11, 26, 8, 0)

    def test_dst_change_keeps_local_hours(self):
        # Paris moves to summer time on 2026-03-29: 09:00 local is 08:00 UTC before, 07:00 after.
        assert windows.next_opening(DAYTIME, PARIS, at(2026, 3, 28, 5, 0)) == at(2026, 3, 28, 8, 0)
        assert windows.next_opening(DAYTIME, PARIS, at(2026, 3, 28, 21, 0)) == at(2026, 3, 29, 7, 0)
        assert windows.is_open(DAYTIME, PARIS, at(2026, 3, 29, 7, 0))
        assert not windows.is_open(DAYTIME, PARIS, at(2026, 3, 29, 6, 59))
        # New York moves back on 2026-11-01: 21:00 local is 01:00 UTC before, 02:00 after.
        assert windows.is_open(DAYTIME, NEW_YORK, at(2026, 11, 2, 1, 30))
        assert not windows.is_open(DAYTIME, NEW_YORK, at(2026, 11, 1, 1, 30))

    def test_opening_in_a_dst_gap_opens_after_the_gap(self):
        w = pb.SendWindow(start_minute=2 * 60 + 30, end_minute=4 * 60)
        assert windows.next_opening(w, PARIS, at(2026, 3, 28, 21, 0)) == at(2026, 3, 29, 1, 0)  # 03:00 CEST

    def test_weekdays_and_windows_across_midnight(self):
        weekdays = pb.SendWindow(start_minute=9 * 60, end_minute=17 * 60, weekdays=[1, 2, 3, 4, 5])
        saturday = at(2026, 11, 28, 10, 0)
        assert not windows.is_open(weekdays, windows.zone("UTC"), saturday)
        assert windows.next_opening(weekdays, windows.zone("UTC"), saturday) == at(2026, 11, 30, 9, 0)
        night = pb.SendWindow(start_minute=22 * 60, end_minute=2 * 60, weekdays=[5])  # Friday night
        assert windows.is_open(night, windows.zone("UTC"), at(2026, 11, 28, 1, 0))  # Saturday 01:00
        assert not windows.is_open(night, windows.zone("UTC"), at(2026, 11, 29, 1, 0))  # Sunday 01:00

    @settings(max_examples=200, deadline=None)
    @given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
           st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe"]),
           st.integers(0, 1439), st.integers(0, 1439))
    def test_next_opening_is_open_and_nothing_before_it_is(self, naive, tz_name, start, end):
        tz, now = windows.zone(tz_name), naive.replace(tzinfo=UTC)
        w = pb.SendWindow(start_minute=start, end_minute=end)
        opening = windows.next_opening(w, tz, now)
        assert opening is not None and opening >= now
        assert windows.is_open(w, tz, opening)
        if opening > now:
            assert not windows.is_open(w, tz, opening - timedelta(minutes=1))
