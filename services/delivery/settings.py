"""Delivery's own settings, from NUDGE_DELIVERY_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from nudgelib.config import env_float, env_int


@dataclass(frozen=True)
class DeliverySettings:
    # An idle stream gets a keep-alive this often, so proxies keep it open.
    keepalive_seconds: float = 15.0
    # Pending messages that could not go yet are offered to open streams again this often.
    reoffer_seconds: float = 30.0
    # Calls to decision out at once; pulls arriving meanwhile wait and go in one DecideBatch.
    decide_in_flight: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "DeliverySettings":
        env = os.environ if env is None else env
        return cls(
            keepalive_seconds=env_float(env, "NUDGE_DELIVERY_KEEPALIVE_SECONDS", 15.0),
            reoffer_seconds=env_float(env, "NUDGE_DELIVERY_REOFFER_SECONDS", 30.0),
            decide_in_flight=env_int(env, "NUDGE_DELIVERY_DECIDE_IN_FLIGHT", 4, low=1, high=64),
        )
