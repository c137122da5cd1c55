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
        self._count_after = 0.0  # monotonic time of the next count
        self._by_app: dict | None = None  # the last breakdown by app, while a bound is passed

    async def refresh(self) -> None:
        """Reads a new snapshot. The ages (an index probe per lane) every time; the counts
        (a scan of what waits, up to the bound) only once fifty times as long as the last
        count took has passed, so that counting a deep backlog never takes more than a
        fiftieth of one database connection. The age bound stays as fresh as the interval."""
        now = time.monotonic()
        count = now >= self._count_after
        backlog, age = await self._log.measure_backlog(self._count_up_to, count=count)
        if count:
            self._count_after = now + 50 * (time.monotonic() - now)
        snapshot = Snapshot(backlog=backlog, oldest_age=age, memory_bytes=resident_bytes())
        if over_bounds(snapshot, self._limits):
            # By app: a scan too, on the counts' schedule.
            if count or self._by_app is None:
                began = time.monotonic()
                self._by_app = await eventlog.backlog_by_app(self._pool, store.LOG, store.CONSUMER_KINDS,
                                                             self._count_up_to)
                self._count_after += 50 * (time.monotonic() - began)
            snapshot = Snapshot(backlog, age, snapshot.memory_bytes, self._by_app)
        else:
            self._by_app = None
        self.snapshot = snapshot
        memory = assess(Snapshot({}, {}, snapshot.memory_bytes), self._limits)
        refused = refusals(snapshot, self._limits)
        if (memory is None) != (self._memory is None) or refused.keys() != self._refused.keys():
            log.warning("backpressure_changed", refusing=memory is not None or bool(refused),
                        memory=memory is not None, apps=sorted(refused))
        self._memory, self._refused = memory, refused
        self._metrics.memory.set(snapshot.memory_bytes)

    def check(self, app_id: str) -> None:
        """Raises RESOURCE_EXHAUSTED (with RetryInfo) while a bound is passed for this app."""
        refusal = self._memory or self._refused.get(app_id)
        if refusal is not None:
            self._metrics.refused.labels(refusal.reason).inc()
            raise ResourceExhausted(refusal.message, refusal.retry_after)

    async def run(self) -> None:
        # A failed refresh keeps the last snapshot until the next one.
        await Loop("backpressure", self.refresh, poll=self._interval, backoff=Backoff.steady(self._interval)).run()
