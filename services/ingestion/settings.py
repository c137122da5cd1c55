"""Ingestion's own settings (NUDGE_INGESTION_*), parsed once into a frozen dataclass.

The shared ones (database, ports, pool size, token) are in nudgelib.config.ServiceSettings.
A bad value stops start-up with one line naming the variable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from nudgelib.config import ConfigError, env_float, env_int

PREFIX = "NUDGE_INGESTION_"


@dataclass(frozen=True)
class IngestionSettings:
    # Events are kept at least this many days (whole daily partitions are dropped after).
    event_retention_days: int = 30
    # A resent event_id is recognised as a duplicate for at least this many days.
    dedupe_retention_days: int = 7
    # Daily partitions created ahead of today, so a failed maintenance run has slack.
    partitions_ahead_days: int = 3
    # How often partitions are created and dropped and expired dedupe keys swept.
    maintenance_interval: float = 300.0

    # Dispatch loops per consumer in this process; they split the lanes between them.
    outbox_workers: int = 2
    # Upper bound of events (or profile updates) forwarded in one consumer call.
    outbox_batch_events: int = 4000
    # Rows this process commits wake its loops at once; rows other replicas commit are
    # found by polling this often (those replicas forward them too).
    outbox_poll_interval: float = 0.5
    outbox_max_backoff: float = 5.0
    outbox_send_timeout: float = 10.0

    # Backpressure: 0 disables a bound.
    max_backlog_events: int = 1_000_000
    max_backlog_age: float = 3600.0
    max_memory_mb: int = 1024
    pressure_refresh_interval: float = 1.0
    retry_after: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "IngestionSettings":
        env = os.environ if env is None else env

        def name(suffix: str) -> str:
            return PREFIX + suffix

        settings = cls(
            event_retention_days=env_int(env, name("EVENT_RETENTION_DAYS"), 30, 1, 36500),
            dedupe_retention_days=env_int(env, name("DEDUPE_RETENTION_DAYS"), 7, 1, 36500),
            partitions_ahead_days=env_int(env, name("PARTITIONS_AHEAD_DAYS"), 3, 1, 365),
            maintenance_interval=env_float(env, name("MAINTENANCE_INTERVAL_SECONDS"), 300.0),
            outbox_workers=env_int(env, name("OUTBOX_WORKERS"), 2, 1, 16),
            outbox_batch_events=env_int(env, name("OUTBOX_BATCH_EVENTS"), 4000, 1, 100_000),
            outbox_poll_interval=env_float(env, name("OUTBOX_POLL_SECONDS"), 0.5),
            outbox_max_backoff=env_float(env, name("OUTBOX_MAX_BACKOFF_SECONDS"), 5.0),
            outbox_send_timeout=env_float(env, name("OUTBOX_SEND_TIMEOUT_SECONDS"), 10.0),
            max_backlog_events=env_int(env, name("MAX_BACKLOG_EVENTS"), 1_000_000, 0, 2**31 - 1),
            max_backlog_age=env_float(env, name("MAX_BACKLOG_AGE_SECONDS"), 3600.0),
            max_memory_mb=env_int(env, name("MAX_MEMORY_MB"), 1024, 0, 1 << 20),
            pressure_refresh_interval=env_float(env, name("PRESSURE_REFRESH_SECONDS"), 1.0),
            retry_after=env_float(env, name("RETRY_AFTER_SECONDS"), 2.0),
        )
        for field, value in (("MAINTENANCE_INTERVAL_SECONDS", settings.maintenance_interval),
                             ("OUTBOX_POLL_SECONDS", settings.outbox_poll_interval),
                             ("OUTBOX_SEND_TIMEOUT_SECONDS", settings.outbox_send_timeout),
                             ("PRESSURE_REFRESH_SECONDS", settings.pressure_refresh_interval)):
            if value <= 0:
                raise ConfigError(f"{name(field)} must be greater than 0, got {value:g}")
        return settings


def load_or_exit() -> IngestionSettings:
    try:
        return IngestionSettings.from_env()
    except ConfigError as exc:
        print(f"nudge-ingestion: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
