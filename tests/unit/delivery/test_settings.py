"""Delivery's own settings: defaults, and one clear line for a bad value."""

from __future__ import annotations

import pytest

from nudgelib.config import ConfigError
from services.delivery.settings import DeliverySettings


def test_defaults_and_overrides():
    assert DeliverySettings.from_env({}) == DeliverySettings(keepalive_seconds=15.0, reoffer_seconds=30.0,
                                                             decide_in_flight=0)
    s = DeliverySettings.from_env({"NUDGE_DELIVERY_KEEPALIVE_SECONDS": "0.5", "NUDGE_DELIVERY_DECIDE_IN_FLIGHT": "64"})
    assert (s.keepalive_seconds, s.decide_in_flight) == (0.5, 64)


@pytest.mark.parametrize("name, value, message", [
    # A zero keep-alive or re-offer interval would make a loop that never sleeps.
    ("NUDGE_DELIVERY_KEEPALIVE_SECONDS", "0", "NUDGE_DELIVERY_KEEPALIVE_SECONDS must be at least 0.1, got 0"),
    ("NUDGE_DELIVERY_REOFFER_SECONDS", "-30", "NUDGE_DELIVERY_REOFFER_SECONDS must be at least 0.1, got -30"),
    ("NUDGE_DELIVERY_DECIDE_IN_FLIGHT", "-1", "NUDGE_DELIVERY_DECIDE_IN_FLIGHT must be between 0 and 64, got -1"),
    ("NUDGE_DELIVERY_DECIDE_IN_FLIGHT", "four", "NUDGE_DELIVERY_DECIDE_IN_FLIGHT must be a whole number, got 'four'"),
])
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(ConfigError) as error:
        DeliverySettings.from_env({name: value})
    assert str(error.value) == message


def test_calls_to_decision_in_flight_are_one_per_replica_unless_set():
    from services.delivery.handout import IN_FLIGHT_BY_NAME, calls_in_flight

    assert calls_in_flight(0, "127.0.0.1:50052") == 1
    assert calls_in_flight(0, "ipv4:10.0.0.5:50052,10.0.0.6:50052,10.0.0.7:50052") == 3
    assert calls_in_flight(0, "ipv6:[::1]:50052,[::1]:50053") == 2
    assert calls_in_flight(0, "decision:50052") == IN_FLIGHT_BY_NAME  # DNS: any number of replicas
    assert calls_in_flight(0, "dns:///decision:50052") == IN_FLIGHT_BY_NAME
    assert calls_in_flight(5, "127.0.0.1:50052") == 5
