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


def test_every_duration_instant_and_count_has_a_supported_range():
    from datetime import timedelta

    from google.protobuf import duration_pb2, timestamp_pb2

    from services.decision import validation as v

    def seconds(d: timedelta) -> duration_pb2.Duration:
        return duration_pb2.Duration(seconds=int(d.total_seconds()))

    def problems(c: pb.Campaign) -> set[str]:
        return {x.field for x in campaign_violations(c)}

    at_limit = campaign()
    at_limit.delivery_mode = pb.DELIVERY_MODE_TRIGGERED
    at_limit.triggers.add(event_name="cart_abandoned", delay=seconds(v.MAX_DELAY))
    at_limit.message_ttl.CopyFrom(seconds(v.MAX_TTL))
    at_limit.caps.CopyFrom(pb.CampaignCaps(lifetime_max=v.MAX_LIFETIME,
                                           reeligibility_interval=seconds(v.MAX_REELIGIBILITY)))
    at_limit.conversion.CopyFrom(pb.Conversion(event_names=["purchase"], deadline=seconds(v.MAX_CONVERSION_DEADLINE)))
    at_limit.start_time.CopyFrom(to_timestamp(v.EARLIEST_TIME))
    at_limit.end_time.CopyFrom(to_timestamp(v.LATEST_TIME - timedelta(seconds=1)))
    at_limit.variants[0].weight = v.MAX_WEIGHT
    assert problems(at_limit) == set()

    past = pb.Campaign()
    past.CopyFrom(at_limit)
    past.triggers[0].delay.seconds += 1
    past.message_ttl.seconds += 1
    past.caps.lifetime_max += 1
    past.caps.reeligibility_interval.seconds += 1
    past.conversion.deadline.seconds += 1
    past.end_time.CopyFrom(to_timestamp(v.LATEST_TIME))
    past.start_time.CopyFrom(timestamp_pb2.Timestamp(seconds=0))
    past.variants[0].weight += 1
    past.control_weight = v.MAX_WEIGHT + 1
    past.status = 99
    past.audience.platforms.append(42)
    assert problems(past) == {
        "campaign.triggers[0].delay", "campaign.message_ttl", "campaign.caps.lifetime_max",
        "campaign.caps.reeligibility_interval", "campaign.conversion.deadline", "campaign.end_time",
        "campaign.start_time", "campaign.variants[0].weight", "campaign.control_weight", "campaign.status",
        "campaign.audience.platforms[0]",
    }


def test_cap_rules_have_supported_ranges():
    from google.protobuf import duration_pb2

    from services.decision import validation as v

    def fields_of(*rules: pb.CapRule) -> set[str]:
        return {x.field for x in settings_violations(pb.AppSettings(cap_rules=rules), is_valid_time_zone)}

    rolling = duration_pb2.Duration(seconds=int(v.MAX_ROLLING.total_seconds()))
    assert fields_of(pb.CapRule(id="a", max_messages=v.MAX_CAP_MESSAGES, rolling=rolling),
                     pb.CapRule(id="b", max_messages=1, calendar_days=v.MAX_CALENDAR_DAYS),
                     pb.CapRule(id="c", max_messages=1, calendar_weeks=v.MAX_CALENDAR_WEEKS)) == set()
    rolling.seconds += 1
    assert fields_of(pb.CapRule(id="a", max_messages=v.MAX_CAP_MESSAGES + 1, rolling=rolling),
                     pb.CapRule(id="b", max_messages=1, calendar_days=v.MAX_CALENDAR_DAYS + 1),
                     pb.CapRule(id="c", max_messages=1, calendar_weeks=v.MAX_CALENDAR_WEEKS + 1)) == {
        "settings.cap_rules[0].max_messages", "settings.cap_rules[0].rolling",
        "settings.cap_rules[1].calendar_days", "settings.cap_rules[2].calendar_weeks"}


def test_an_audience_and_its_triggers_have_a_bounded_size():
    """Bounded well inside what one CheckSegments call to segmentation answers, so a save is
    never refused for a reason the operator cannot see."""
    c = campaign()
    c.audience.include_segment_ids.extend(f"seg_{i}" for i in range(101))
    c.audience.exclude_segment_ids.extend(f"seg_x{i}" for i in range(100))
    for i in range(51):
        c.triggers.add(event_name=f"e{i}")
    fields = {v.field for v in campaign_violations(c)}
    assert {"campaign.audience.include_segment_ids", "campaign.triggers"} <= fields
    assert "campaign.audience.exclude_segment_ids" not in fields
