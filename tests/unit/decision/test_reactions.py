"""What a batch of events does: the sends its triggers start, and the pending sends its
exception events cancel — per trigger, and only when the exception's filters pass."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgetools import demo
from nudgelib.protoconv import to_timestamp
from services.decision.catalog import AppCatalog
from services.decision.model import Cancel
from services.decision.reactions import react
from tests.helpers import event

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
HALF_HOUR = duration_pb2.Duration(seconds=1800)


def equals(name: str, text: str) -> common_pb2.PropertyFilter:
    f = common_pb2.PropertyFilter(name=name, operator=common_pb2.PROPERTY_OPERATOR_EQUALS)
    f.value.string_value = text
    return f


def follow_up() -> pb.Campaign:
    """Trigger 0: A was shown and not clicked within 30 minutes. Trigger 1: a cart abandoned."""
    c = demo.welcome_campaign("seg")
    c.id, c.delivery_mode = "cmp_follow", pb.DELIVERY_MODE_TRIGGERED
    c.triggers.add(event_name="message_impression", delay=HALF_HOUR, property_filters=[equals("campaign_id", "cmp_a")],
                   exception_events=[pb.ExceptionEvent(event_name="message_clicked",
                                                       property_filters=[equals("campaign_id", "cmp_a")])])
    c.triggers.add(event_name="cart_abandoned", delay=HALF_HOUR,
                   exception_events=[pb.ExceptionEvent(event_name="purchase")])
    return c


def at(e: common_pb2.Event, minutes: float) -> common_pb2.Event:
    e.occurred_time.CopyFrom(to_timestamp(NOW + timedelta(minutes=minutes)))
    return e


CATALOG = AppCatalog.of([follow_up()], pb.AppSettings(default_time_zone="UTC"))


def test_each_trigger_starts_its_own_send_once_per_event():
    r = react(CATALOG, [at(event("i1", "u", "message_impression", campaign_id="cmp_a"), 0),
                        at(event("c1", "u", "cart_abandoned"), 1),
                        at(event("i2", "u", "message_impression", campaign_id="cmp_other"), 2)], NOW)
    assert [(s.cause, s.trigger_index, s.due_at) for s in r.sends] == [
        ("event:i1", 0, NOW + timedelta(minutes=30)), ("event:c1", 1, NOW + timedelta(minutes=31))]
    assert r.cancels == []


def test_an_exception_cancels_only_its_own_trigger():
    r = react(CATALOG, [at(event("p1", "u", "purchase"), 5)], NOW)
    assert r.cancels == [Cancel("u", "cmp_follow", 1, NOW + timedelta(minutes=5), "p1", "purchase")]


def test_an_exception_with_filters_cancels_only_when_they_pass():
    other = react(CATALOG, [at(event("k1", "u", "message_clicked", campaign_id="cmp_b"), 5)], NOW)
    assert other.cancels == []
    same = react(CATALOG, [at(event("k2", "u", "message_clicked", campaign_id="cmp_a"), 5)], NOW)
    assert same.cancels == [Cancel("u", "cmp_follow", 0, NOW + timedelta(minutes=5), "k2", "message_clicked")]


def test_events_are_taken_in_the_order_they_happened():
    later_cart, purchase = at(event("c1", "u", "cart_abandoned"), 10), at(event("p1", "u", "purchase"), 5)
    r = react(CATALOG, [later_cart, purchase], NOW)
    # The cancel covers sends triggered up to the purchase: the later cart's send stands.
    assert r.cancels[0].at < r.sends[0].triggered_at


def test_a_late_event_whose_delay_has_passed_is_due_now():
    r = react(CATALOG, [at(event("c1", "u", "cart_abandoned"), -60)], NOW)
    assert r.sends[0].due_at == NOW
    assert r.sends[0].expire_at == NOW + timedelta(hours=24)


def test_the_trigger_events_properties_are_kept_for_the_template():
    r = react(CATALOG, [at(event("c1", "u", "cart_abandoned", cart_value=120, item={"name": "Lamp"}), 0)], NOW)
    assert json.loads(r.sends[0].event_properties) == {"cart_value": 120, "item": {"name": "Lamp"}}
