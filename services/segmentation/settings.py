"""Segmentation's own settings, from NUDGE_SEGMENTATION_* environment variables.

The shared ones (database, port, peers…) are in nudgelib.config; these tune the caches, the
time-passing sweeper, the announcement outbox and the audience queries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from nudgelib.config import ConfigError, env_float, env_int
from nudgelib.retention import Retention

PREFIX = "NUDGE_SEGMENTATION_"


@dataclass(frozen=True)
class SegmentationSettings:
    # User contexts kept in memory per replica; 0 turns the cache off.
    context_cache_size: int = 100_000
    # Days of raw event properties kept, so a property filter saved in a segment counts the
    # events of that many days before it was saved; 0 keeps none.
    event_property_days: int = 30
    # How often users whose memberships change by the passage of time are re-evaluated.
    sweep_interval_seconds: float = 1.0
    sweep_batch: int = 500
    # Announcements to decision: rows per request, shards dispatched in parallel by replicas
    # (a user's changes always stay in one shard, in order), longest pause after failures.
    outbox_batch: int = 500
    outbox_shards: int = 4
    outbox_max_backoff_seconds: float = 10.0
    # Memory for the hash tables of one audience query (EstimateAudience, ListSegmentMembers,
    # membership of a changed segment), and how long such a query may run.
    audience_work_mem_mb: int = 256
    audience_timeout_seconds: float = 60.0
    # Days the ids of applied events and profile updates are kept, so a redelivery from
    # ingestion's outbox (at least once) has no second effect; 0 keeps them for ever.
    dedupe_retention_days: int = 7
    # How often raw event properties and applied ids past their retention are deleted.
    maintenance_interval_seconds: float = 300.0

    def retentions(self) -> list[Retention]:
        kept = []
        if self.event_property_days:
            kept.append(Retention("recent_events", "occurred_at", timedelta(days=self.event_property_days)))
        if self.dedupe_retention_days:
            keep = timedelta(days=self.dedupe_retention_days)
            kept += [Retention("applied_events", "applied_at", keep), Retention("applied_updates", "applied_at", keep)]
        return kept

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SegmentationSettings":
        env = os.environ if env is None else env
        settings = cls(
            context_cache_size=env_int(env, f"{PREFIX}CONTEXT_CACHE_SIZE", cls.context_cache_size, 0, 10_000_000),
            event_property_days=env_int(env, f"{PREFIX}EVENT_PROPERTY_DAYS", cls.event_property_days, 0, 3660),
            sweep_interval_seconds=env_float(env, f"{PREFIX}SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds),
            sweep_batch=env_int(env, f"{PREFIX}SWEEP_BATCH", cls.sweep_batch, 1, 10_000),
            outbox_batch=env_int(env, f"{PREFIX}OUTBOX_BATCH", cls.outbox_batch, 1, 10_000),
            outbox_shards=env_int(env, f"{PREFIX}OUTBOX_SHARDS", cls.outbox_shards, 1, 256),
            outbox_max_backoff_seconds=env_float(
                env, f"{PREFIX}OUTBOX_MAX_BACKOFF_SECONDS", cls.outbox_max_backoff_seconds),
            audience_work_mem_mb=env_int(env, f"{PREFIX}AUDIENCE_WORK_MEM_MB", cls.audience_work_mem_mb, 4, 65_536),
            audience_timeout_seconds=env_float(
                env, f"{PREFIX}AUDIENCE_TIMEOUT_SECONDS", cls.audience_timeout_seconds),
            dedupe_retention_days=env_int(env, f"{PREFIX}DEDUPE_RETENTION_DAYS", cls.dedupe_retention_days, 0, 3660),
            maintenance_interval_seconds=env_float(
                env, f"{PREFIX}MAINTENANCE_INTERVAL_SECONDS", cls.maintenance_interval_seconds),
        )
        for name, value in (("SWEEP_INTERVAL_SECONDS", settings.sweep_interval_seconds),
                            ("AUDIENCE_TIMEOUT_SECONDS", settings.audience_timeout_seconds),
                            ("MAINTENANCE_INTERVAL_SECONDS", settings.maintenance_interval_seconds)):
            if value <= 0:
                raise ConfigError(f"{PREFIX}{name} must be positive, got {value}")
        return settings
