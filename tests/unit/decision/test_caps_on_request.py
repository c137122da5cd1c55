"""An on-request campaign's default: once per user, unless it asks for repeats."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf import duration_pb2

from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision import caps, windows
from services.decision.model import Delivered

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
UTC = windows.zone("UTC")


def campaign(mode: int, **caps_fields) -> pb.Campaign:
    return pb.Campaign(id="cmp", delivery_mode=mode, caps=pb.CampaignCaps(**caps_fields))


def shown(times: int) -> list[Delivered]:
    return [Delivered("cmp", (), NOW - timedelta(days=30 + i)) for i in range(times)]


def test_an_on_request_campaign_without_repeat_rules_is_shown_once():
    c = campaign(pb.DELIVERY_MODE_ON_REQUEST)
    assert caps.check(c, [], [], UTC, NOW) is None
    assert caps.check(c, [], shown(1), UTC, NOW) == caps.Capped("lifetime", None)


def test_a_lifetime_max_above_one_or_a_reeligibility_interval_allows_repeats():
    assert caps.check(campaign(pb.DELIVERY_MODE_ON_REQUEST, lifetime_max=3), [], shown(2), UTC, NOW) is None
    assert caps.check(campaign(pb.DELIVERY_MODE_ON_REQUEST, lifetime_max=3), [], shown(3), UTC, NOW) is not None
    weekly = campaign(pb.DELIVERY_MODE_ON_REQUEST, reeligibility_interval=duration_pb2.Duration(seconds=7 * 86400))
    assert caps.check(weekly, [], shown(5), UTC, NOW) is None


def test_a_triggered_campaign_sends_once_per_firing_by_default():
    assert caps.check(campaign(pb.DELIVERY_MODE_TRIGGERED), [], shown(4), UTC, NOW) is None
