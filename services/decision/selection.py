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


def timing_exclusion(campaign: pb.Campaign | Compiled, settings: pb.AppSettings, user: common_pb2.UserContext,
                     history: list[Delivered], now: datetime,
                     memo: dict[int, caps.Capped | None] | None = None) -> Exclusion | None:
    """Window, quiet hours and caps: the rules whose answer is "not now, but at <time>"."""
    c = campaign if isinstance(campaign, Compiled) else compile_campaign(campaign)
    tz = windows.zone(user.time_zone, settings.default_time_zone)
    if c.window is not None and not windows.is_open(c.window, tz, now):
        opens = windows.next_opening(c.window, tz, now)
        return Exclusion("OUTSIDE_WINDOW", f"outside the send window until {windows.local_text(opens, tz)}", opens)
    if settings.HasField("quiet_hours") and windows.is_open(settings.quiet_hours, tz, now):
        ends = windows.next_closing(settings.quiet_hours, tz, now)
        return Exclusion("QUIET_HOURS", f"quiet hours until {windows.local_text(ends, tz)}", ends)
    capped = caps.check(c.campaign, settings.cap_rules, history, tz, now, memo)
    if capped is not None:
        return Exclusion("CAPPED", capped.detail(tz), capped.until, capped.rule)
    return None


def delivered(campaign: pb.Campaign, now: datetime) -> Delivered:
    return Delivered(campaign.id, tuple(campaign.tags), now, not campaign.caps.bypass_app_caps)


def select(campaigns: list[Compiled], settings: pb.AppSettings, user: common_pb2.UserContext,
           request: pb.RequestContext, state: UserState, now: datetime, limit: int,
           on_request: bool = True) -> list[Verdict]:
    """A verdict for every campaign, in rank order; at most `limit` are CHOSEN.

    Each chosen message counts toward the caps of those after it in the same pull.
    """
    history = list(state.history)
    out: list[Verdict] = []
    chosen = 0
    members = frozenset(user.segment_ids)
    memo: dict[int, caps.Capped | None] = {}
    tz = windows.zone(user.time_zone, settings.default_time_zone)
    for rules in campaigns:
        campaign = rules.campaign
        why = exclusion(rules, user, request, now, on_request=on_request, members=members, tz=tz) or timing_exclusion(
            rules, settings, user, history, now, memo)
        if why is not None:
            out.append(Verdict(campaign, pb.VERDICT_EXCLUDED, exclusion=why))
            continue
        if chosen >= limit:
            out.append(Verdict(campaign, pb.VERDICT_LOWER_PRIORITY, exclusion=Exclusion(
                "LOWER_PRIORITY", "higher-ranked campaigns filled the request")))
            continue
        arm, new = arm_for(campaign, user.user_id, state)
        if arm == CONTROL:
            out.append(Verdict(campaign, pb.VERDICT_CONTROL, arm, Exclusion(
                "CONTROL_GROUP", "the user is in the control group"), new))
            continue
        out.append(Verdict(campaign, pb.VERDICT_CHOSEN, arm, new_arm=new))
        history.append(delivered(campaign, now))
        memo.clear()
        chosen += 1
    return out
