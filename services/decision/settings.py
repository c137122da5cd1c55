"""Decision's own settings, from NUDGE_DECISION_* environment variables (nudgelib.config)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from nudgelib.config import Settings, group, setting
from nudgelib.dead_letters import FailureSettings
from nudgelib.retention import Retention

PREFIX = "NUDGE_DECISION_"


@dataclass(frozen=True)
class DecisionSettings(Settings):
    # Bounded per-user caches: contexts from segmentation, and decision's own history.
    context_cache_size: int = setting(PREFIX + "CONTEXT_CACHE_SIZE", 200_000, low=1, high=100_000_000)
    state_cache_size: int = setting(PREFIX + "STATE_CACHE_SIZE", 200_000, low=1, high=100_000_000)
    # ... and in estimated megabytes (services/decision/caches.py), whichever bound is reached
    # first: with the process's own ~120 MB, the defaults fit the 512Mi limit of the
    # Kubernetes base. Raise both with the limit.
    context_cache_mb: int = setting(PREFIX + "CONTEXT_CACHE_MB", 96, low=1, high=1_000_000)
    state_cache_mb: int = setting(PREFIX + "STATE_CACHE_MB", 160, low=1, high=1_000_000)
    # A cached context is asked for again after this long even without an announcement (a
    # safety net: segmentation announces every change decision keeps); 0 turns the cache off.
    context_ttl_seconds: float = setting(PREFIX + "CONTEXT_TTL_SECONDS", 300.0, low=0, high=86_400)
    # Triggered sends: how many are claimed at once, and how often the due queue is polled
    # when nothing wakes it.
    release_batch: int = setting(PREFIX + "RELEASE_BATCH", 200, low=1, high=100_000)
    release_poll_seconds: float = setting(PREFIX + "RELEASE_POLL_SECONDS", 0.5, low=0.01, high=60)
    # Days a settled triggered send (released, cancelled, dropped, expired, failed) is kept
    # after it settled, for Explain and ListPendingSends; 0 keeps them for ever. Explain shows
    # the last 7 days, so fewer than 7 shortens what it can show.
    settled_send_retention_days: int = setting(PREFIX + "SETTLED_SEND_RETENTION_DAYS", 30, low=0, high=3660)
    # Hours a mutating RPC's response is kept under its request_id: a retry within them gets
    # it back and changes nothing again; later, the id is forgotten (nudgelib.replay).
    request_id_window_hours: float = setting(PREFIX + "REQUEST_ID_WINDOW_HOURS", 24.0, low=0.01, high=720)
    maintenance_interval_seconds: float = setting(PREFIX + "MAINTENANCE_INTERVAL_SECONDS", 300.0,
                                                  low=1, high=86_400)
    # When a consumer call fails for some items: retries, then dead letters (nudgelib.isolation).
    failures: FailureSettings = group(FailureSettings)

    def retentions(self) -> list[Retention]:
        """Decision's own tables kept for a window (request ids are kept by nudgelib.replay)."""
        kept = []
        if self.settled_send_retention_days:
            kept.append(Retention("pending_sends", "updated_at", timedelta(days=self.settled_send_retention_days),
                                  key=("app_id", "id"), where="status <> 'pending'"))
        return kept
