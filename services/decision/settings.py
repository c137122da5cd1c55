"""Decision's own settings, from NUDGE_DECISION_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from nudgelib.config import ConfigError, env_float, env_int


@dataclass(frozen=True)
class DecisionSettings:
    # Bounded per-user caches: contexts from segmentation, and decision's own history.
    context_cache_size: int = 200_000
    state_cache_size: int = 200_000
    # A cached context is asked for again after this long even without an announcement (a
    # safety net: segmentation announces every change decision keeps); 0 turns the cache off.
    context_ttl_seconds: float = 300.0
    # Triggered sends: how many are claimed at once, and how often the due queue is polled
    # when nothing wakes it.
    release_batch: int = 200
    release_poll_seconds: float = 0.5
    # Days the ids of applied events are kept, so a redelivery from ingestion's outbox (at
    # least once) starts no second send; 0 keeps them for ever. Deleted every interval.
    dedupe_retention_days: int = 7
    maintenance_interval_seconds: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "DecisionSettings":
        env = os.environ if env is None else env
        settings = cls(
            context_cache_size=env_int(env, "NUDGE_DECISION_CONTEXT_CACHE_SIZE", 200_000, 1, 100_000_000),
            state_cache_size=env_int(env, "NUDGE_DECISION_STATE_CACHE_SIZE", 200_000, 1, 100_000_000),
            context_ttl_seconds=env_float(env, "NUDGE_DECISION_CONTEXT_TTL_SECONDS", 300.0),
            release_batch=env_int(env, "NUDGE_DECISION_RELEASE_BATCH", 200, 1, 100_000),
            release_poll_seconds=env_float(env, "NUDGE_DECISION_RELEASE_POLL_SECONDS", 0.5),
            dedupe_retention_days=env_int(env, "NUDGE_DECISION_DEDUPE_RETENTION_DAYS", 7, 0, 3660),
            maintenance_interval_seconds=env_float(env, "NUDGE_DECISION_MAINTENANCE_INTERVAL_SECONDS", 300.0),
        )
        if settings.maintenance_interval_seconds <= 0:
            raise ConfigError("NUDGE_DECISION_MAINTENANCE_INTERVAL_SECONDS must be positive, got "
                              f"{settings.maintenance_interval_seconds}")
        return settings
