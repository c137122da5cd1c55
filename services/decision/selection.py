"""Choosing messages for a user: every rule in order, for each campaign. Pure.

The same function serves the pull path, the release of triggered sends and Explain, so
what Explain says is what a pull does.
"""

from __future__ import annotations

from datetime import datetime

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision import caps, windows
from services.decision.eligibility import Compiled, compile_campaign, exclusion
from services.decision.model import Delivered, Exclusion, UserState, Verdict
from services.decision.variants import CONTROL, arm_for


# Steps of "not now, but at <time>" followed to the instant every timing rule allows: a
# window's next opening may fall in quiet hours or under a full cap, whose end may fall
# outside the window, and so on. Each step moves to a rule's own next boundary, so a few
# suffice; past the bound the last instant is still a time before which nothing can be sent.
TIMING_STEPS = 16


def _timing_at(c: Compiled, settings: pb.AppSettings, tz, history: list[Delivered], at: datetime,
               memo: dict | None) -> Exclusion | None:
    """The first timing rule that holds the message at `at`, with the instant it lets go."""
    if c.window is not None and not windows.is_open(c.window, tz, at):
        opens = windows.next_opening(c.window, tz, at)
        return Exclusion("OUTSIDE_WINDOW", f"outside the send window until {windows.local_text(opens, tz)}", opens)
    if settings.HasField("quiet_hours") and windows.is_open(settings.quiet_hours, tz, at):
        ends = windows.next_closing(settings.quiet_hours, tz, at)
        return Exclusion("QUIET_HOURS", f"quiet hours until {windows.local_text(ends, tz)}", ends)
    capped = caps.check(c.campaign, settings.cap_rules, history, tz, at, memo)
    if capped is not None:
        return Exclusion("CAPPED", capped.detail(tz), capped.until, capped.rule)
    return None


def timing_exclusion(campaign: pb.Campaign | Compiled, settings: pb.AppSettings, user: common_pb2.UserContext,
                     history: list[Delivered], now: datetime,
                     memo: dict[tuple[int, datetime], caps.Capped | None] | None = None) -> Exclusion | None:
    """Window, quiet hours and caps: the rules whose answer is "not now, but at <time>". The
    time is the first instant all of them allow (with no further deliveries meanwhile), and
    the rule named is the one that holds the message until then: the most restrictive."""
    c = campaign if isinstance(campaign, Compiled) else compile_campaign(campaign)
    tz = windows.zone(user.time_zone, settings.default_time_zone)
    why = _timing_at(c, settings, tz, history, now, memo)
    for _ in range(TIMING_STEPS):
        if why is None or why.until is None:
            break
        later = _timing_at(c, settings, tz, history, why.until, memo)
        if later is None:
            break
        why = later
    return why


def delivered(campaign: pb.Campaign, now: datetime) -> Delivered:
    return Delivered(campaign.id, tuple(campaign.tags), now, not campaign.caps.bypass_app_caps)


class Selection:
    """The choice of one request, campaign by campaign in rank order: each chosen message
    counts toward the caps of those after it, and once `limit` are chosen the rest are
    LOWER_PRIORITY. A message handed out meanwhile by other means (a pending triggered one,
    ranked among the campaigns) is noted with `took`."""

    def __init__(self, settings: pb.AppSettings, user: common_pb2.UserContext, request: pb.RequestContext,
                 state: UserState, now: datetime, limit: int, on_request: bool = True) -> None:
        self.settings, self.user, self.request, self.now = settings, user, request, now
        self.state, self.limit, self.on_request = state, limit, on_request
        self.history = list(state.history)
        self.chosen = 0
        self.members = frozenset(user.segment_ids)
        self.memo: dict[tuple[int, datetime], caps.Capped | None] = {}
        self.tz = windows.zone(user.time_zone, settings.default_time_zone)

    @property
    def full(self) -> bool:
        return self.chosen >= self.limit

    def took(self, record: Delivered) -> None:
        self.history.append(record)
        self.memo.clear()
        self.chosen += 1

    def verdict(self, rules: Compiled) -> Verdict:
        campaign = rules.campaign
        why = exclusion(rules, self.user, self.request, self.now, on_request=self.on_request, members=self.members,
                        tz=self.tz) or timing_exclusion(rules, self.settings, self.user, self.history, self.now, self.memo)
        if why is not None:
            return Verdict(campaign, pb.VERDICT_EXCLUDED, exclusion=why)
        if self.full:
            return Verdict(campaign, pb.VERDICT_LOWER_PRIORITY, exclusion=Exclusion(
                "LOWER_PRIORITY", "higher-ranked campaigns filled the request"))
        arm, new = arm_for(campaign, self.user.user_id, self.state)
        if arm == CONTROL:
            return Verdict(campaign, pb.VERDICT_CONTROL, arm, Exclusion(
                "CONTROL_GROUP", "the user is in the control group"), new)
        self.took(delivered(campaign, self.now))
        return Verdict(campaign, pb.VERDICT_CHOSEN, arm, new_arm=new)


def select(campaigns: list[Compiled], settings: pb.AppSettings, user: common_pb2.UserContext,
           request: pb.RequestContext, state: UserState, now: datetime, limit: int,
           on_request: bool = True) -> list[Verdict]:
    """A verdict for every campaign, in rank order; at most `limit` are CHOSEN.

    Each chosen message counts toward the caps of those after it in the same pull.
    """
    selection = Selection(settings, user, request, state, now, limit, on_request)
    return [selection.verdict(rules) for rules in campaigns]
