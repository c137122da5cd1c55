"""Frequency caps: pure functions over a user's delivery history.

All rules apply together and the most restrictive wins: of the full ones, the one that frees
up last is reported with that instant (a lifetime maximum reached never frees up; on a tie,
the first in the order campaign lifetime, re-eligibility, app rules as listed). An on-request
campaign that sets neither a lifetime maximum nor a re-eligibility interval is shown once per
user (Braze's default): a banner that came back on every pull would be noise, so repeats are
asked for, not assumed. A triggered campaign sends once per firing, as its triggers say. "Calendar"
periods are days or ISO weeks (Monday first) in the user's time zone: "3 per calendar day"
allows 3 messages between local midnights, whereas "3 per rolling 24 h" allows 3 in any 24
hours. A campaign that bypasses app caps is limited only by its own caps, and its messages
do not count toward app rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_timedelta
from services.decision.model import Delivered
from services.decision.windows import local_text


@dataclass(frozen=True)
class Capped:
    rule: str  # cap rule id, or `lifetime` / `reeligibility`
    until: datetime | None  # None: never frees up

    def detail(self, tz: ZoneInfo) -> str:
        if self.until is None:
            return f"capped by {self.rule}"
        return f"capped by {self.rule} until {local_text(self.until, tz)}"


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _period_start(day: date, rule: pb.CapRule) -> date:
    """First local day of the calendar period that contains `day`."""
    if rule.WhichOneof("period") == "calendar_weeks":
        monday = day - timedelta(days=day.isoweekday() - 1)
        return monday - timedelta(weeks=rule.calendar_weeks - 1)
    return day - timedelta(days=rule.calendar_days - 1)


def _period_unit(rule: pb.CapRule) -> timedelta:
    return timedelta(weeks=1) if rule.WhichOneof("period") == "calendar_weeks" else timedelta(days=1)


def _app_rule(rule: pb.CapRule, history: Sequence[Delivered], tz: ZoneInfo, now: datetime) -> Capped | None:
    counted = sorted(d.at for d in history
                     if d.counts_toward_app_caps and (not rule.tag or rule.tag in d.tags))
    if rule.WhichOneof("period") == "rolling":
        span = to_timedelta(rule.rolling)
        recent = [at for at in counted if at > now - span]
        if len(recent) < rule.max_messages:
            return None
        # Frees up when enough of the oldest fall out of the window.
        return Capped(rule.id, recent[len(recent) - rule.max_messages] + span)
    today = now.astimezone(tz).date()
    start = _period_start(today, rule)
    days = sorted(at.astimezone(tz).date() for at in counted)
    if sum(1 for d in days if d >= start) < rule.max_messages:
        return None
    # Step period by period until the window no longer holds max_messages.
    unit = _period_unit(rule)
    anchor = today if unit.days == 1 else today - timedelta(days=today.isoweekday() - 1)
    for step in range(1, 400):
        later = anchor + unit * step
        if sum(1 for d in days if d >= _period_start(later, rule)) < rule.max_messages:
            return Capped(rule.id, _local_midnight(later, tz))
    return Capped(rule.id, None)


def lifetime_limit(campaign: pb.Campaign) -> int:
    """How many messages of the campaign one user may get in all; 0: no limit."""
    caps = campaign.caps
    if caps.lifetime_max:
        return caps.lifetime_max
    once = campaign.delivery_mode == pb.DELIVERY_MODE_ON_REQUEST and not to_timedelta(caps.reeligibility_interval)
    return 1 if once else 0


def _later(a: Capped | None, b: Capped | None) -> Capped | None:
    """The more restrictive of two answers (`a` on a tie): the one that frees up later."""
    if a is None or b is None:
        return a or b
    if a.until is None or (b.until is not None and a.until >= b.until):
        return a
    return b


def check(campaign: pb.Campaign, rules: Iterable[pb.CapRule], history: Sequence[Delivered],
          tz: ZoneInfo, now: datetime, memo: dict[tuple[int, datetime], Capped | None] | None = None
          ) -> Capped | None:
    """The most restrictive full cap for sending `campaign` to this user at `now`, or None.

    `memo` keeps app rules' answers across the campaigns of one pull, by rule and instant
    (they do not depend on the campaign); the caller empties it when the history changes."""
    own = [d for d in history if d.campaign_id == campaign.id]
    caps = campaign.caps
    limit = lifetime_limit(campaign)
    if limit and len(own) >= limit:
        return Capped("lifetime", None)
    found = None
    interval = to_timedelta(caps.reeligibility_interval)
    if interval and own:
        eligible_again = max(d.at for d in own) + interval
        if eligible_again > now:
            found = Capped("reeligibility", eligible_again)
    if caps.bypass_app_caps:
        return found
    tags = campaign.tags
    for i, rule in enumerate(rules):
        if rule.tag and rule.tag not in tags:
            continue
        if memo is not None and (i, now) in memo:
            capped = memo[(i, now)]
        else:
            capped = _app_rule(rule, history, tz, now)
            if memo is not None:
                memo[(i, now)] = capped
        found = _later(found, capped)
        if found is not None and found.until is None:
            return found
    return found
