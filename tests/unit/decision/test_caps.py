"""Frequency caps over a user's delivery history, with a fixed clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision import caps, windows
from services.decision.model import Delivered

UTC = timezone.utc
PARIS, TOKYO = windows.zone("Europe/Paris"), windows.zone("Asia/Tokyo")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


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

    def test_of_two_full_rules_the_one_that_frees_up_last_is_reported_whatever_their_order(self):
        weekly = pb.CapRule(id="5-per-week", max_messages=5, calendar_weeks=1)
        # Three today (full until midnight in Paris) and five this week (full until Monday).
        history = delivered(1, 2, 3, 30, 40, now=self.now)
        for rules in ([DAILY, weekly], [weekly, DAILY]):
            capped = caps.check(self.campaign, rules, history, PARIS, self.now)
            assert (capped.rule, capped.until) == ("5-per-week", at(2026, 11, 29, 23, 0))

    def test_an_app_rule_that_frees_up_after_the_reeligibility_interval_is_the_one_reported(self):
        campaign = pb.Campaign(id="cmp", caps=pb.CampaignCaps(reeligibility_interval=duration_pb2.Duration(seconds=600)))
        history = delivered(0.1, now=self.now, campaign="cmp") + delivered(1, 2, now=self.now)
        capped = caps.check(campaign, [DAILY], history, PARIS, self.now)
        assert (capped.rule, capped.until) == ("3-per-day", at(2026, 11, 25, 23, 0))
        # Once the day rule frees up first, re-eligibility is what holds.
        later = pb.Campaign(id="cmp", caps=pb.CampaignCaps(reeligibility_interval=duration_pb2.Duration(seconds=7200)))
        assert caps.check(later, [DAILY], history, PARIS, self.now).rule == "reeligibility"

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


ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "Pacific/Chatham"]


def _full(rule: pb.CapRule, times: list[datetime], tz, now: datetime) -> bool:
    """Whether `rule` already holds its maximum at `now`, counted as the module documents it."""
    if rule.WhichOneof("period") == "rolling":
        span = timedelta(seconds=rule.rolling.seconds)
        return sum(1 for t in times if now - span < t <= now) >= rule.max_messages
    today = now.astimezone(tz).date()
    if rule.WhichOneof("period") == "calendar_weeks":
        start = today - timedelta(days=today.isoweekday() - 1) - timedelta(weeks=rule.calendar_weeks - 1)
    else:
        start = today - timedelta(days=rule.calendar_days - 1)
    return sum(1 for t in times if t.astimezone(tz).date() >= start) >= rule.max_messages


@settings(max_examples=150, deadline=None)
@given(gaps=st.lists(st.integers(60, 40 * 3600), min_size=1, max_size=40), tz_name=st.sampled_from(ZONES),
       per_days=st.integers(1, 3), days=st.integers(1, 3), per_rolling=st.integers(1, 4),
       rolling_hours=st.integers(1, 72), per_week=st.integers(1, 6))
def test_for_any_deliveries_and_zone_no_rule_is_ever_exceeded(gaps, tz_name, per_days, days, per_rolling,
                                                             rolling_hours, per_week):
    tz = windows.zone(tz_name)
    rules = [pb.CapRule(id="days", max_messages=per_days, calendar_days=days),
             pb.CapRule(id="rolling", max_messages=per_rolling,
                        rolling=duration_pb2.Duration(seconds=rolling_hours * 3600)),
             pb.CapRule(id="week", max_messages=per_week, calendar_weeks=1)]
    campaign = pb.Campaign(id="cmp")
    now, history = at(2026, 3, 20, 0, 0), []  # spans DST changes in both hemispheres
    for gap in gaps:
        now += timedelta(seconds=gap)
        times = [d.at for d in history]
        capped = caps.check(campaign, rules, history, tz, now)
        # Exact both ways: refused exactly when some rule is full, and that rule is the one named.
        assert (capped is None) == (not any(_full(r, times, tz, now) for r in rules))
        if capped is None:
            history.append(Delivered("cmp", (), now))
            continue
        rule = next(r for r in rules if r.id == capped.rule)
        assert _full(rule, times, tz, now)
        # It frees up when it says it does, and not a minute before.
        assert capped.until is not None and capped.until > now
        assert not _full(rule, times, tz, capped.until)
        assert _full(rule, times, tz, capped.until - timedelta(minutes=1))
    times = [d.at for d in history]
    span = timedelta(hours=rolling_hours)
    for t in times:
        # Rolling: no span of `rolling_hours` holds more than its maximum ...
        assert sum(1 for u in times if t - span < u <= t) <= per_rolling
        # ... calendar: no `days` consecutive local days, and no local ISO week, holds more than its.
        day = t.astimezone(tz).date()
        assert sum(1 for u in times if day - timedelta(days=days - 1) <= u.astimezone(tz).date() <= day) <= per_days
        week = day.isocalendar()[:2]
        assert sum(1 for u in times if u.astimezone(tz).date().isocalendar()[:2] == week) <= per_week


def test_calendar_and_rolling_periods_differ_as_documented():
    """3 per calendar day allows 3 on each side of the user's midnight; 3 per rolling 24 h
    does not allow more than 3 in any 24 hours."""
    daily = pb.CapRule(id="day", max_messages=3, calendar_days=1)
    rolling = pb.CapRule(id="24h", max_messages=3, rolling=duration_pb2.Duration(seconds=86400))
    before_midnight = [Delivered("x", (), at(2026, 11, 25, 22, 0) + timedelta(minutes=m)) for m in (0, 10, 20)]
    just_after = at(2026, 11, 25, 23, 5)  # 00:05 the next day in Paris
    assert caps.check(pb.Campaign(id="c"), [daily], before_midnight, PARIS, just_after) is None
    assert caps.check(pb.Campaign(id="c"), [rolling], before_midnight, PARIS, just_after).until == at(2026, 11, 26, 22, 0)
