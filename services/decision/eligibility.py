"""Whether a campaign may go to a user right now, and if not, the first rule that says no.

Pure functions over protos and plain values; `now` is a parameter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_datetime


@dataclass(frozen=True)
class Exclusion:
    reason: str  # NOT_ACTIVE, BEFORE_START, AFTER_END, NOT_IN_AUDIENCE, PLATFORM, ...
    detail: str
    until: datetime | None = None


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in text.split(".")) if text else None
    except ValueError:
        return None


def exclusion(
    campaign: pb.Campaign,
    user: common_pb2.UserContext,
    request: pb.RequestContext | None,
    now: datetime,
    on_request: bool = True,
) -> Exclusion | None:
    """The first rule excluding the campaign, or None when it is eligible.

    Without a request (a triggered send coming due, before any client asked) the rules about
    the client — platform, app version, screen — are left for when a client asks."""
    if campaign.status != pb.CAMPAIGN_STATUS_ACTIVE:
        return Exclusion("NOT_ACTIVE", f"status is {pb.CampaignStatus.Name(campaign.status)}")
    if campaign.HasField("start_time") and now < to_datetime(campaign.start_time):
        start = to_datetime(campaign.start_time)
        return Exclusion("BEFORE_START", f"starts at {start.isoformat()}", start)
    if campaign.HasField("end_time") and now >= to_datetime(campaign.end_time):
        return Exclusion("AFTER_END", f"ended at {to_datetime(campaign.end_time).isoformat()}")
    if on_request and campaign.delivery_mode != pb.DELIVERY_MODE_ON_REQUEST:
        return Exclusion("TRIGGERED_ONLY", "sent when its trigger fires, not on request")
    audience = campaign.audience
    member = set(user.segment_ids)
    if audience.include_segment_ids and not member.intersection(audience.include_segment_ids):
        return Exclusion("NOT_IN_AUDIENCE", "in none of the included segments")
    excluded_by = member.intersection(audience.exclude_segment_ids)
    if excluded_by:
        return Exclusion("NOT_IN_AUDIENCE", f"in excluded segment {sorted(excluded_by)[0]}")
    if request is None:
        return None
    if audience.platforms and request.platform not in audience.platforms:
        return Exclusion("PLATFORM", f"not shown on {common_pb2.Platform.Name(request.platform)}")
    if audience.min_app_version or audience.max_app_version:
        version = _version(request.app_version or user.app_version)
        low, high = _version(audience.min_app_version), _version(audience.max_app_version)
        if version is None or (low and version < low) or (high and version > high):
            return Exclusion("APP_VERSION", "app version outside the campaign's range")
    if audience.screens and request.screen not in audience.screens:
        return Exclusion("SCREEN", f"not shown on screen {request.screen!r}")
    return None


def rank_key(campaign: pb.Campaign) -> tuple[int, str]:
    """Highest priority first; ties go to the smaller campaign id, so the order is stable."""
    return (-campaign.priority, campaign.id)


CONTROL = ""


def assign_variant(campaign: pb.Campaign, user_id: str) -> str:
    """A stable arm for (campaign, user): a variant id, or CONTROL.

    The hash picks a point in [0, total weight); arms take consecutive ranges in the order
    control first, then variants as listed.
    """
    weights = [(CONTROL, campaign.control_weight)] + [
        (v.id, v.weight or (1 if len(campaign.variants) == 1 else 0)) for v in campaign.variants
    ]
    total = sum(w for _, w in weights)
    if total == 0:
        return campaign.variants[0].id
    digest = hashlib.sha256(f"{campaign.id}:{user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for arm, weight in weights:
        if point < weight:
            return arm
        point -= weight
    return campaign.variants[-1].id  # not reached


def pick_content(variant: pb.Variant, *locales: str) -> pb.LocalizedContent:
    """Content in the first of `locales` the variant has (exact, then by language), else its
    default locale, else its first content."""
    by_locale = {c.locale.lower().replace("_", "-"): c for c in variant.contents}
    for wanted in locales:
        if not wanted:
            continue
        exact = by_locale.get(wanted.lower().replace("_", "-"))
        if exact is not None:
            return exact
        language = wanted.lower().replace("_", "-").split("-")[0]
        for key, content in by_locale.items():
            if key.split("-")[0] == language:
                return content
    default = by_locale.get(variant.default_locale.lower().replace("_", "-"))
    if default is not None:
        return default
    return variant.contents[0]


# Exclusions of a pending triggered message that waiting cannot lift: the message is dropped.
PERMANENT = frozenset({"NOT_ACTIVE", "AFTER_END", "NOT_IN_AUDIENCE"})
