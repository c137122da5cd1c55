"""Campaign eligibility and ranking, at a fixed instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_timestamp
from services.decision.eligibility import exclusion, rank_key
from tests.unit.decision.builders import campaign

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def member(*segments: str, **kw) -> common_pb2.UserContext:
    return common_pb2.UserContext(user_id="u1", segment_ids=list(segments), **kw)


def reason(c: pb.Campaign, u: common_pb2.UserContext, req: pb.RequestContext | None = None) -> str | None:
    found = exclusion(c, u, req or pb.RequestContext(), NOW)
    return found.reason if found else None


def test_eligible_member_of_the_audience():
    assert reason(campaign(), member("seg_signup")) is None


@pytest.mark.parametrize("change, expected", [
    (lambda c: setattr(c, "status", pb.CAMPAIGN_STATUS_PAUSED), "NOT_ACTIVE"),
    (lambda c: c.start_time.CopyFrom(to_timestamp(NOW + timedelta(seconds=1))), "BEFORE_START"),
    (lambda c: c.end_time.CopyFrom(to_timestamp(NOW)), "AFTER_END"),
    (lambda c: setattr(c, "delivery_mode", pb.DELIVERY_MODE_TRIGGERED), "TRIGGERED_ONLY"),
    (lambda c: c.audience.exclude_segment_ids.append("seg_signup"), "NOT_IN_AUDIENCE"),
    (lambda c: c.audience.platforms.append(common_pb2.PLATFORM_ANDROID), "PLATFORM"),
    (lambda c: setattr(c.audience, "min_app_version", "5.0"), "APP_VERSION"),
    (lambda c: c.audience.screens.append("checkout"), "SCREEN"),
])
def test_first_excluding_rule_is_reported(change, expected):
    c = campaign()
    change(c)
    assert reason(c, member("seg_signup"), pb.RequestContext(platform=common_pb2.PLATFORM_IOS,
                                                             app_version="4.2", screen="home")) == expected


def test_start_and_end_are_inclusive_and_exclusive():
    c = campaign()
    c.start_time.CopyFrom(to_timestamp(NOW))
    c.end_time.CopyFrom(to_timestamp(NOW + timedelta(seconds=1)))
    assert reason(c, member("seg_signup")) is None
    later = campaign()
    later.start_time.CopyFrom(to_timestamp(NOW + timedelta(hours=1)))
    assert exclusion(later, member("seg_signup"), pb.RequestContext(), NOW).until == NOW + timedelta(hours=1)


def test_not_in_any_included_segment():
    assert reason(campaign(), member("seg_other")) == "NOT_IN_AUDIENCE"


def test_rank_by_priority_then_id():
    cs = [campaign(id="cmp_b", priority=5), campaign(id="cmp_a", priority=5), campaign(id="cmp_c", priority=9)]
    assert [c.id for c in sorted(cs, key=rank_key)] == ["cmp_c", "cmp_a", "cmp_b"]
