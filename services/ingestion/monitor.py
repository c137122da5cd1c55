"""Keeps the backpressure snapshot fresh: the log's backlog per consumer from one query (broken
down by app only while a total passes a bound) and this process's memory, every `interval`
seconds, and publishes them as gauges. Refusals are per app (pressure.py)."""

from __future__ import annotations

import time

import asyncpg
import structlog

from nudgelib.errors import ResourceExhausted
from nudgelib.eventlog import dispatcher as eventlog
from nudgelib.eventlog.dispatcher import LogDispatcher
from nudgelib.loops import Backoff, Loop
from services.ingestion import store
from services.ingestion.metrics import IngestionMetrics
from services.ingestion.pressure import (EMPTY, Limits, Refusal, Snapshot, assess, over_bounds, refusals,
                                         resident_bytes)

log = structlog.get_logger(__name__)


class PressureMonitor:
    def __init__(self, pool: asyncpg.Pool, log: LogDispatcher, limits: Limits, metrics: IngestionMetrics,
                 interval: float) -> None:
        self._pool = pool
        self._log = log
        self._limits = limits
        self._metrics = metrics
        self._interval = interval
        self._memory: Refusal | None = None  # refuses every app
        self._refused: dict[str, Refusal] = {}  # app -> why
        self.snapshot = EMPTY
        # Items waiting are counted up to just past the bound they are compared with (or a
        # million, for the gauge, without one): a deep backlog costs no more to read.
        self._count_up_to = (limits.max_backlog_events or 1_000_000) + 1

    async def refresh(self) -> float:
        """Reads a new snapshot; returns when to read the next one: after the interval, or
        after ten times as long as this read took, so that counting a deep backlog never
        takes more than a tenth of one database connection."""
        began = time.monotonic()
        backlog, age = await self._log.measure_backlog(self._count_up_to)
        snapshot = Snapshot(backlog=backlog, oldest_age=age, memory_bytes=resident_bytes())
        if over_bounds(snapshot, self._limits):
            by_app = await eventlog.backlog_by_app(self._pool, store.LOG, store.CONSUMER_KINDS, self._count_up_to)
            snapshot = Snapshot(backlog, age, snapshot.memory_bytes, by_app)
        self.snapshot = snapshot
        memory = assess(Snapshot({}, {}, snapshot.memory_bytes), self._limits)
        refused = refusals(snapshot, self._limits)
        if (memory is None) != (self._memory is None) or refused.keys() != self._refused.keys():
            log.warning("backpressure_changed", refusing=memory is not None or bool(refused),
                        memory=memory is not None, apps=sorted(refused))
        self._memory, self._refused = memory, refused
        self._metrics.memory.set(snapshot.memory_bytes)
        return max(self._interval, 10 * (time.monotonic() - began))

    def check(self, app_id: str) -> None:
        """Raises RESOURCE_EXHAUSTED (with RetryInfo) while a bound is passed for this app."""
        refusal = self._memory or self._refused.get(app_id)
        if refusal is not None:
            self._metrics.refused.labels(refusal.reason).inc()
            raise ResourceExhausted(refusal.message, refusal.retry_after)

    async def run(self) -> None:
        # A failed refresh keeps the last snapshot until the next one.
        await Loop("backpressure", self.refresh, poll=self._interval, backoff=Backoff.steady(self._interval)).run()
