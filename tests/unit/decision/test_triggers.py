"""Which triggered campaigns an event or a segment entry fires, and what cancels them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf import duration_pb2, struct_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgetools import demo
from nudgelib.filters import compile_filter, matches
from services.decision import triggers

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
P = common_pb2.PropertyOperator


def value(v) -> struct_pb2.Value:
    s = struct_pb2.Struct()
    s.update({"v": v})
    return s.fields["v"]


def abandoned_cart() -> pb.Campaign:
    c = demo.welcome_campaign("seg")
    c.id, c.name = "cmp_cart", "Come back"
    c.audience.ClearField("include_segment_ids")
    c.delivery_mode = pb.DELIVERY_MODE_TRIGGERED
    c.triggers.add(event_name="cart_abandoned", delay=duration_pb2.Duration(seconds=1800),
                   exception_events=[pb.ExceptionEvent(event_name="purchase")],
                   property_filters=[common_pb2.PropertyFilter(name="cart_value", operator=P.PROPERTY_OPERATOR_GREATER,
                                                       value=value(100))])
    return c


def fired(campaigns, name, properties):
    return triggers.fired_by_event(triggers.compile_triggers(campaigns), name, properties, NOW, NOW)


class TestTriggers:
    def test_abandoned_cart_fires_after_30_minutes_and_purchase_cancels(self):
        c = abandoned_cart()
        (firing,) = fired([c], "cart_abandoned", {"cart_value": 150})
        assert firing.due == NOW + timedelta(minutes=30)
        (trigger,) = triggers.compile_triggers([c])
        assert triggers.cancels(trigger, "purchase", {})
        assert not triggers.cancels(trigger, "page_view", {})

    def test_cart_value_filter(self):
        c = abandoned_cart()
        assert fired([c], "cart_abandoned", {"cart_value": 100}) == []
        assert fired([c], "cart_abandoned", {"cart_value": "lots"}) == []
        assert fired([c], "cart_abandoned", {}) == []
        assert fired([c], "cart_viewed", {"cart_value": 500}) == []
        assert len(fired([c], "cart_abandoned", {"cart_value": 100.5})) == 1

    def test_filters_on_nested_and_string_properties(self):
        f = compile_filter(common_pb2.PropertyFilter(name="screen.name", operator=P.PROPERTY_OPERATOR_EQUALS,
                                                     value=value("checkout")))
        assert matches(f, {"screen": {"name": "checkout"}})
        assert not matches(f, {"screen": "checkout"})
        clicked = compile_filter(common_pb2.PropertyFilter(name="campaign_id", operator=P.PROPERTY_OPERATOR_EQUALS,
                                                           value=value("cmp_a")))
        assert matches(clicked, {"campaign_id": "cmp_a", "button_id": "buy"})

    def test_on_request_campaigns_never_fire_and_segment_entry_does(self):
        c = abandoned_cart()
        c.ClearField("triggers")
        c.triggers.add(segment_entered_id="seg_vip")
        assert fired([demo.welcome_campaign("s")], "signup", {}) == []
        assert [f.campaign.id for f in triggers.fired_by_segment_entry(triggers.compile_triggers([c]), ["seg_vip"], NOW)] == ["cmp_cart"]
        assert triggers.fired_by_segment_entry(triggers.compile_triggers([c]), ["seg_other"], NOW) == []
