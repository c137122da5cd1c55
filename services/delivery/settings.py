"""Delivery's own settings, from NUDGE_DELIVERY_* environment variables (nudgelib.config)."""

from __future__ import annotations

from dataclasses import dataclass

from nudgelib.config import Settings, group, setting
from nudgelib.dead_letters import FailureSettings


@dataclass(frozen=True)
class DeliverySettings(Settings):
    # An idle stream gets a keep-alive this often, so proxies keep it open.
    keepalive_seconds: float = setting("NUDGE_DELIVERY_KEEPALIVE_SECONDS", 15.0, low=0.1)
    # Pending messages that could not go yet are offered to open streams again this often.
    reoffer_seconds: float = setting("NUDGE_DELIVERY_REOFFER_SECONDS", 30.0, low=0.1)
    # Calls to decision out at once; pulls arriving meanwhile wait and go in one DecideBatch.
    # 0: one per decision replica (handout.calls_in_flight).
    decide_in_flight: int = setting("NUDGE_DELIVERY_DECIDE_IN_FLIGHT", 0, low=0, high=64)
    # When a consumer call fails for some items: retries, then dead letters (nudgelib.isolation).
    failures: FailureSettings = group(FailureSettings)
