"""Send windows in the user's local time and frequency caps, with a fixed clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision import caps, windows
from services.decision.caps import Delivered

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


def delivered(*hours_ago: float, now: datetime, campaign: str = "other", tags: tuple[str, ...] = ()) -> list[Delivered]:
    return [Delivered(campaign, tags, now - timedelta(hours=h)) for h in hours_ago]


DAILY = pb.CapRule(id="3-per-day", max_messages=3, calendar_days=1)
ROLLING = pb.CapRule(id="3-per-24h", max_messages=3, rolling=duration_pb2.Duration(seconds=86400))


class TestCaps:
    now = at(2026, 11, 25, 22, 30)  # 23:30 in Paris
    campaign = pb.Campaign(id="cmp", tags=["promo"])

    def test_calendar_day_versus_rolling(self):
        history = delivered(1, 2, 3, now=self.now)
        daily = caps.check(self.campaign, [DAILY], history, PARIS, self.now)
        rolling = caps.check(self.campaign, [ROLLING], history, PARIS, self.now)
        assert (daily.rule, daily.until) == ("3-per-day", at(2026, 11, 25, 23, 0))  # Paris midnight
        assert (rolling.rule, rolling.until) == ("3-per-24h", self.now - timedelta(hours=3) + timedelta(days=1))
        # Half an hour later it is a new day in Paris: the calendar cap is free, the rolling one is not.
        later = self.now + timedelta(minutes=30)
        assert caps.check(self.campaign, [DAILY], history, PARIS, later) is None
        assert caps.check(self.campaign, [ROLLING], history, PARIS, later) is not None
        # The calendar day is the user's: at 07:30 in Tokyo, messages of 12-14 hours ago were
        # yesterday there, but today in Paris.
        earlier = delivered(12, 13, 14, now=self.now)
        assert caps.check(self.campaign, [DAILY], earlier, TOKYO, self.now) is None
        assert caps.check(self.campaign, [DAILY], earlier, PARIS, self.now) is not None

    def test_the_most_restrictive_rule_wins(self):
        weekly = pb.CapRule(id="5-per-week", max_messages=5, calendar_weeks=1)
        history = delivered(30, 40, 50, 60, 70, now=self.now)  # Monday and Tuesday
        assert caps.check(self.campaign, [DAILY, weekly], history, PARIS, self.now).rule == "5-per-week"
        assert caps.check(self.campaign, [weekly], history, PARIS, self.now).until == at(2026, 11, 29, 23, 0)

    def test_tag_rules_count_and_cap_only_their_tag(self):
        promo = pb.CapRule(id="1-promo-per-day", max_messages=1, calendar_days=1, tag="promo")
        history = delivered(1, now=self.now, tags=("promo",))
        assert caps.check(self.campaign, [promo], history, PARIS, self.now).rule == "1-promo-per-day"
        assert caps.check(pb.Campaign(id="c2", tags=["news"]), [promo], history, PARIS, self.now) is None
        untagged = delivered(1, now=self.now)
        assert caps.check(self.campaign, [promo], untagged, PARIS, self.now) is None

    def test_bypass_ignores_app_rules_and_does_not_count(self):
        urgent = pb.Campaign(id="urgent", caps=pb.CampaignCaps(bypass_app_caps=True))
        history = delivered(1, 2, 3, now=self.now)
        assert caps.check(urgent, [DAILY], history, PARIS, self.now) is None
        bypassed = [Delivered("urgent", (), self.now - timedelta(hours=h), counts_toward_app_caps=False) for h in (1, 2, 3)]
        assert caps.check(self.campaign, [DAILY], bypassed, PARIS, self.now) is None

    def test_lifetime_and_reeligibility(self):
        c = pb.Campaign(id="cmp", caps=pb.CampaignCaps(
            lifetime_max=2, reeligibility_interval=duration_pb2.Duration(seconds=7 * 86400)))
        once = delivered(24, now=self.now, campaign="cmp")
        capped = caps.check(c, [], once, PARIS, self.now)
        assert (capped.rule, capped.until) == ("reeligibility", self.now + timedelta(days=6))
        assert caps.check(c, [], delivered(24 * 8, now=self.now, campaign="cmp"), PARIS, self.now) is None
        twice = delivered(24 * 8, 24 * 16, now=self.now, campaign="cmp")
        assert caps.check(c, [], twice, PARIS, self.now) == caps.Capped("lifetime", None)

    @pytest.mark.parametrize("count", [0, 1, 2])
    def test_under_the_cap_is_free(self, count):
        assert caps.check(self.campaign, [DAILY, ROLLING], delivered(*range(1, count + 1), now=self.now),
                          PARIS, self.now) is None
