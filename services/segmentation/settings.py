"""Segmentation's own settings, from NUDGE_SEGMENTATION_* environment variables (nudgelib.config).

The shared ones (database, port, peers…) are in nudgelib.config; these tune the caches, the
time-passing sweeper, the announcement outbox and the audience queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from nudgelib.config import Settings, group, setting
from nudgelib.dead_letters import FailureSettings

PREFIX = "NUDGE_SEGMENTATION_"


@dataclass(frozen=True)
class SegmentationSettings(Settings):
    # User contexts kept in memory per replica; 0 turns the cache off.
    context_cache_size: int = setting(PREFIX + "CONTEXT_CACHE_SIZE", 100_000, low=0, high=10_000_000)
    # Days of past events a property filter new to the app's segments counts when it is saved
    # (read from ingestion, which keeps them NUDGE_INGESTION_EVENT_RETENTION_DAYS: a longer
    # look-back finds no more), and an EstimateAudience of a draft with one; 0: none, the
    # filter counts from its save on.
    event_property_days: int = setting(PREFIX + "EVENT_PROPERTY_DAYS", 30, low=0, high=3660)
    # How often users whose memberships change by the passage of time are re-evaluated.
    sweep_interval_seconds: float = setting(PREFIX + "SWEEP_INTERVAL_SECONDS", 1.0, low=0.01, high=3600)
    sweep_batch: int = setting(PREFIX + "SWEEP_BATCH", 500, low=1, high=10_000)
    # Announcements to decision: at most this many per request, and the longest pause between
    # tries while decision is down. (They go in 16 lanes; a user's changes stay in one, in order.)
    outbox_batch: int = setting(PREFIX + "OUTBOX_BATCH", 500, low=1, high=10_000)
    outbox_max_backoff_seconds: float = setting(PREFIX + "OUTBOX_MAX_BACKOFF_SECONDS", 10.0, low=0.1, high=600)
    # Memory for the hash tables of one audience query (EstimateAudience, ListSegmentMembers,
    # membership of a changed segment), and how long such a query may run.
    audience_work_mem_mb: int = setting(PREFIX + "AUDIENCE_WORK_MEM_MB", 256, low=4, high=65_536)
    audience_timeout_seconds: float = setting(PREFIX + "AUDIENCE_TIMEOUT_SECONDS", 60.0, low=0.1, high=3600)
    # Hours a mutating RPC's response is kept under its request_id: a retry within them gets
    # it back and changes nothing again; later, the id is forgotten (nudgelib.replay).
    request_id_window_hours: float = setting(PREFIX + "REQUEST_ID_WINDOW_HOURS", 24.0, low=0.01, high=720)
    # How often request ids past their retention are deleted.
    maintenance_interval_seconds: float = setting(PREFIX + "MAINTENANCE_INTERVAL_SECONDS", 300.0,
                                                  low=1, high=86_400)
    # When a consumer call fails for some items: retries, then dead letters (nudgelib.isolation).
    failures: FailureSettings = group(FailureSettings)

