"""Ingestion's own settings, from NUDGE_INGESTION_* environment variables (nudgelib.config).

The shared ones (database, ports, pool size, token) are in nudgelib.config.ServiceSettings.
"""

from __future__ import annotations

from dataclasses import dataclass

from nudgelib.config import Settings, group, setting
from nudgelib.dead_letters import FailureSettings

PREFIX = "NUDGE_INGESTION_"


@dataclass(frozen=True)
class IngestionSettings(Settings):
    # Events are kept at least this many days (whole daily partitions are dropped after).
    event_retention_days: int = setting(PREFIX + "EVENT_RETENTION_DAYS", 30, low=1, high=36_500)
    # A resent event_id is recognised as a duplicate for at least this many days.
    dedupe_retention_days: int = setting(PREFIX + "DEDUPE_RETENTION_DAYS", 7, low=1, high=36_500)
    # Daily partitions created ahead of today, so a failed maintenance run has slack.
    partitions_ahead_days: int = setting(PREFIX + "PARTITIONS_AHEAD_DAYS", 3, low=1, high=365)
    # How often partitions are created and dropped and expired dedupe keys swept.
    maintenance_interval: float = setting(PREFIX + "MAINTENANCE_INTERVAL_SECONDS", 300.0, low=1, high=86_400)

    # Dispatch loops per consumer in this process; they split the lanes between them.
    outbox_workers: int = setting(PREFIX + "OUTBOX_WORKERS", 2, low=1, high=16)
    # Upper bound of events (or profile updates) forwarded in one consumer call.
    outbox_batch_events: int = setting(PREFIX + "OUTBOX_BATCH_EVENTS", 4000, low=1, high=100_000)
    # Rows this process commits wake its loops at once; rows other replicas commit are
    # found by polling this often (those replicas forward them too).
    outbox_poll_interval: float = setting(PREFIX + "OUTBOX_POLL_SECONDS", 0.5, low=0.01, high=60)
    # The longest pause between retries to a consumer that is down (the first is 0.1 s).
    outbox_max_backoff: float = setting(PREFIX + "OUTBOX_MAX_BACKOFF_SECONDS", 5.0, low=0.1, high=600)
    outbox_send_timeout: float = setting(PREFIX + "OUTBOX_SEND_TIMEOUT_SECONDS", 10.0, low=0.1, high=600)

    # Backpressure: 0 disables a bound.
    max_backlog_events: int = setting(PREFIX + "MAX_BACKLOG_EVENTS", 1_000_000, low=0, high=2**31 - 1)
    max_backlog_age: float = setting(PREFIX + "MAX_BACKLOG_AGE_SECONDS", 3600.0, low=0)
    max_memory_mb: int = setting(PREFIX + "MAX_MEMORY_MB", 1024, low=0, high=1 << 20)
    pressure_refresh_interval: float = setting(PREFIX + "PRESSURE_REFRESH_SECONDS", 1.0, low=0.01, high=60)
    # What a refused producer is told to wait before retrying.
    retry_after: float = setting(PREFIX + "RETRY_AFTER_SECONDS", 2.0, low=0, high=3600)
    # When a consumer call fails for some items: retries, then dead letters (nudgelib.isolation).
    failures: FailureSettings = group(FailureSettings)
