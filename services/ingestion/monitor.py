"""Keeps the backpressure snapshot fresh: the outbox backlog from one grouped query and this
process's memory, every `interval` seconds, and publishes them as gauges."""

from __future__ import annotations

import asyncpg
import structlog

from nudgelib.errors import ResourceExhausted
from nudgelib.loops import Backoff, Loop
from services.ingestion import store
from services.ingestion.metrics import IngestionMetrics
from services.ingestion.pressure import EMPTY, Limits, Refusal, Snapshot, assess, resident_bytes

log = structlog.get_logger(__name__)


class PressureMonitor:
    def __init__(self, pool: asyncpg.Pool, limits: Limits, metrics: IngestionMetrics, interval: float) -> None:
        self._pool = pool
        self._limits = limits
        self._metrics = metrics
        self._interval = interval
        self._refusal: Refusal | None = None
        self.snapshot = EMPTY

    async def refresh(self) -> None:
        backlog, age = await store.backlog(self._pool)
        self.snapshot = Snapshot(backlog=backlog, oldest_age=age, memory_bytes=resident_bytes())
        refusal = assess(self.snapshot, self._limits)
        if (refusal is None) != (self._refusal is None):
            log.warning("backpressure_changed", refusing=refusal is not None,
                        reason=refusal.reason if refusal else None)
        self._refusal = refusal
        for consumer, items in backlog.items():
            self._metrics.backlog.labels(consumer).set(items)
            self._metrics.backlog_age.labels(consumer).set(age[consumer])
        self._metrics.memory.set(self.snapshot.memory_bytes)

    def check(self) -> None:
        """Raises RESOURCE_EXHAUSTED (with RetryInfo) while a bound is passed."""
        refusal = self._refusal
        if refusal is not None:
            self._metrics.refused.labels(refusal.reason).inc()
            raise ResourceExhausted(refusal.message, refusal.retry_after)

    async def run(self) -> None:
        # A failed refresh keeps the last snapshot until the next one.
        await Loop("backpressure", self.refresh, poll=self._interval, backoff=Backoff.steady(self._interval)).run()
