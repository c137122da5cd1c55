"""Campaign eligibility, ranking, variants and content choice, at a fixed instant."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib import demo
from nudgelib.protoconv import to_timestamp
from services.decision.eligibility import CONTROL, assign_variant, exclusion, pick_content, rank_key
from services.decision.validation import campaign_violations, settings_violations
from nudgelib.timezones import is_valid_time_zone

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def campaign(**kw) -> pb.Campaign:
    c = demo.welcome_campaign("seg_signup")
    c.id = kw.pop("id", "cmp_1")
    for k, v in kw.items():
        setattr(c, k, v)
    return c


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


def test_variant_assignment_is_sticky_and_split_by_weight():
    c = campaign()
    base = c.variants[0]
    c.ClearField("variants")
    for vid, weight in (("A", 2), ("B", 1)):
        v = c.variants.add()
        v.CopyFrom(base)
        v.id, v.weight = vid, weight
    c.control_weight = 1
    arms = Counter(assign_variant(c, f"user-{i}") for i in range(8000))
    assert abs(arms["A"] / 8000 - 0.5) < 0.03
    assert abs(arms["B"] / 8000 - 0.25) < 0.03
    assert abs(arms[CONTROL] / 8000 - 0.25) < 0.03
    assert all(assign_variant(c, f"user-{i}") == assign_variant(c, f"user-{i}") for i in range(100))


def test_content_falls_back_by_language_then_default():
    v = pb.Variant(id="A", default_locale="en", contents=[
        pb.LocalizedContent(locale="en", content=common_pb2.MessageContent(title="Hi")),
        pb.LocalizedContent(locale="fr-FR", content=common_pb2.MessageContent(title="Salut")),
    ])
    assert pick_content(v, "fr_FR").content.title == "Salut"
    assert pick_content(v, "fr-CA").content.title == "Salut"
    assert pick_content(v, "", "de-DE").content.title == "Hi"


def test_campaign_validation_names_fields():
    c = campaign()
    c.delivery_mode = pb.DELIVERY_MODE_TRIGGERED
    c.variants[0].contents[0].content.buttons[1].id = "tour"
    c.send_window.CopyFrom(pb.SendWindow(start_minute=1440, weekdays=[0]))
    c.end_time.CopyFrom(to_timestamp(NOW))
    c.start_time.CopyFrom(to_timestamp(NOW))
    assert {v.field for v in campaign_violations(c)} == {
        "campaign.triggers", "campaign.variants[0].contents[0].content.buttons",
        "campaign.send_window.start_minute", "campaign.send_window.weekdays[0]", "campaign.end_time",
    }
    assert campaign_violations(campaign()) == []


def test_settings_validation():
    s = pb.AppSettings(default_time_zone="Nowhere/City", cap_rules=[
        pb.CapRule(id="daily", max_messages=3, calendar_days=1),
        pb.CapRule(id="daily", max_messages=0),
    ])
    assert {v.field for v in settings_violations(s, is_valid_time_zone)} == {
        "settings.default_time_zone", "settings.cap_rules[1].id", "settings.cap_rules[1].max_messages",
        "settings.cap_rules[1].period",
    }
