"""Validation of campaigns and app settings: each violation names its field."""

from __future__ import annotations

from datetime import datetime, timezone

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_timestamp
from nudgelib.timezones import is_valid_time_zone
from services.decision.validation import campaign_violations, settings_violations
from tests.unit.decision.builders import campaign

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


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


def test_trigger_filters_and_exception_events_are_checked_at_the_door():
    c = campaign()
    c.delivery_mode = pb.DELIVERY_MODE_TRIGGERED
    t = c.triggers.add(event_name="cart abandoned")
    t.property_filters.add(name="cart_value", operator=common_pb2.PROPERTY_OPERATOR_GREATER)
    t.exception_events.add(event_name="")
    t.exception_events.add(event_name="message_clicked").property_filters.add(name="campaign_id")
    c.triggers.add(segment_entered_id="seg_vip").property_filters.add(
        name="x", operator=common_pb2.PROPERTY_OPERATOR_EXISTS)
    assert {v.field for v in campaign_violations(c)} == {
        "campaign.triggers[0].event_name", "campaign.triggers[0].property_filters[0].value",
        "campaign.triggers[0].exception_events[0].event_name",
        "campaign.triggers[0].exception_events[1].property_filters[0].operator",
        "campaign.triggers[1].property_filters",
    }


def test_an_app_version_bound_must_be_dotted_numbers():
    c = campaign()
    c.audience.min_app_version, c.audience.max_app_version = "4.x", "5.10.2"
    assert [v.field for v in campaign_violations(c)] == ["campaign.audience.min_app_version"]
