"""Upkeep that is not about memberships: raw event properties older than the retention
window are deleted (counters already hold what they said)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import structlog

from nudgelib.clock import Clock
from services.segmentation import store

log = structlog.get_logger(__name__)


async def prune_loop(pool: asyncpg.Pool, clock: Clock, retention: timedelta, interval: float) -> None:
    while True:
        try:
            deleted = await store.prune_recent_events(pool, clock.now() - retention)
            if deleted:
                log.info("recent_events_pruned", deleted=deleted)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - database away: next round
            log.warning("prune_failed", error=str(exc))
        await asyncio.sleep(interval)
