"""Whether a campaign may go to a user right now, and if not, the first rule that says no.

Pure functions over protos and plain values; `now` is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_datetime
from nudgelib.versions import parse_version
from services.decision.model import Exclusion
from services.decision.windows import local_text

UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Compiled:
    """A campaign's eligibility rules as plain values, read once per catalog load: a pull
    checks every active campaign, and reading proto fields each time costs more than the
    checks themselves."""

    campaign: pb.Campaign
    id: str
    active: bool
    status: str
    start: datetime | None
    end: datetime | None
    on_request: bool
    include: frozenset[str]
    exclude: frozenset[str]
    platforms: frozenset[int]
    min_version: tuple[int, ...] | None
    max_version: tuple[int, ...] | None
    screens: frozenset[str]
    window: pb.SendWindow | None
    tags: frozenset[str]


def compile_campaign(c: pb.Campaign) -> Compiled:
    a = c.audience
    return Compiled(
        campaign=c, id=c.id, active=c.status == pb.CAMPAIGN_STATUS_ACTIVE,
        status=pb.CampaignStatus.Name(c.status),
        start=to_datetime(c.start_time) if c.HasField("start_time") else None,
        end=to_datetime(c.end_time) if c.HasField("end_time") else None,
        on_request=c.delivery_mode == pb.DELIVERY_MODE_ON_REQUEST,
        include=frozenset(a.include_segment_ids), exclude=frozenset(a.exclude_segment_ids),
        platforms=frozenset(a.platforms), min_version=parse_version(a.min_app_version),
        max_version=parse_version(a.max_app_version), screens=frozenset(a.screens),
        window=c.send_window if c.HasField("send_window") else None, tags=frozenset(c.tags),
    )


def exclusion(
    campaign: pb.Campaign | Compiled,
    user: common_pb2.UserContext,
    request: pb.RequestContext | None,
    now: datetime,
    on_request: bool = True,
    members: frozenset[str] | None = None,
    tz: ZoneInfo | None = None,
) -> Exclusion | None:
    """The first rule excluding the campaign, or None when it is eligible.

    Without a request (a triggered send coming due, before any client asked) the rules about
    the client — platform, app version, screen — are left for when a client asks. `tz` is the
    user's zone, in which the text gives the start and end (UTC without it)."""
    c = campaign if isinstance(campaign, Compiled) else compile_campaign(campaign)
    if not c.active:
        return Exclusion("NOT_ACTIVE", f"status is {c.status}")
    if c.start is not None and now < c.start:
        return Exclusion("BEFORE_START", f"starts at {local_text(c.start, tz or UTC)}", c.start)
    if c.end is not None and now >= c.end:
        return Exclusion("AFTER_END", f"ended at {local_text(c.end, tz or UTC)}")
    if on_request and not c.on_request:
        return Exclusion("TRIGGERED_ONLY", "sent when its trigger fires, not on request")
    member = members if members is not None else frozenset(user.segment_ids)
    if c.include and c.include.isdisjoint(member):
        return Exclusion("NOT_IN_AUDIENCE", "in none of the included segments")
    if c.exclude and not c.exclude.isdisjoint(member):
        return Exclusion("NOT_IN_AUDIENCE", f"in excluded segment {sorted(c.exclude & member)[0]}")
    if request is None:
        return None
    if c.platforms and request.platform not in c.platforms:
        return Exclusion("PLATFORM", f"not shown on {common_pb2.Platform.Name(request.platform)}")
    if c.min_version is not None or c.max_version is not None:
        version = parse_version(request.app_version or user.app_version)
        if version is None or (c.min_version and version < c.min_version) or (
                c.max_version and version > c.max_version):
            return Exclusion("APP_VERSION", "app version outside the campaign's range")
    if c.screens and request.screen not in c.screens:
        return Exclusion("SCREEN", f"not shown on screen {request.screen!r}")
    return None


def rank_key(campaign: pb.Campaign) -> tuple[int, str]:
    """Highest priority first; ties go to the smaller campaign id, so the order is stable."""
    return (-campaign.priority, campaign.id)


# Exclusions of a pending triggered message that waiting cannot lift: the message is dropped.
PERMANENT = frozenset({"NOT_ACTIVE", "AFTER_END", "NOT_IN_AUDIENCE"})
