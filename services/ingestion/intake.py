"""Taking in a batch of events: backpressure, validation with partial success, and one
commit of the new events to the log. Shared by TrackEvents, StreamEvents and
the internal IngestEvents."""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudgelib.clock import Clock
from nudgelib.errors import InvalidArgument
from nudgelib.eventlog.lanes import lane_of
from nudgelib.protoconv import to_timestamp
from nudgelib.tracing import current_traceparent
from services.ingestion import store
from services.ingestion.metrics import IngestionMetrics
from services.ingestion.monitor import PressureMonitor
from services.ingestion.validation import MAX_BATCH, check_event


class Intake:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, metrics: IngestionMetrics, pressure: PressureMonitor,
                 on_queued: Callable[[], None] = lambda: None, traced: bool = False) -> None:
        self._pool = pool
        self._traced = traced
        self._clock = clock
        self._metrics = metrics
        self._pressure = pressure
        # Called after new items are committed to the log (wakes this process's readers).
        self.queued = on_queued

    def trace_context(self) -> str | None:
        """The traceparent a batch is stored with (nudgelib.eventlog.traces): the current
        span's, with tracing on; None with it off."""
        return current_traceparent() if self._traced else None

    def check_pressure(self, app_id: str) -> None:
        """Raises RESOURCE_EXHAUSTED (with retry advice) while a backpressure bound is passed
        for this app (its own backlog, or memory)."""
        self._pressure.check(app_id)

    async def accept(self, app_id: str, events, field: str = "events") -> tuple[int, int, list[pb.RejectedEvent]]:
        """Validates and commits one batch; returns (accepted, duplicates, rejected)."""
        self._pressure.check(app_id)
        if len(events) == 0:
            raise InvalidArgument.field(field, "must hold at least one event")
        if len(events) > MAX_BATCH:
            raise InvalidArgument.field(field, f"at most {MAX_BATCH} events per batch")
        began = time.perf_counter()
        now = self._clock.now()
        stamp = to_timestamp(now)
        rejected: list[pb.RejectedEvent] = []
        fresh: list[common_pb2.Event] = []
        seen: set[str] = set()
        duplicates_in_batch = 0
        for index, event in enumerate(events):
            problem = check_event(event, now)
            if problem is not None:
                rejected.append(pb.RejectedEvent(index=index, reason=problem.reason, message=problem.message))
                self._metrics.reject(problem.reason)
                continue
            if event.event_id in seen:
                duplicates_in_batch += 1
                continue
            seen.add(event.event_id)
            if not event.HasField("occurred_time"):
                event.occurred_time.CopyFrom(stamp)
            fresh.append(event)
        # Column by column: comprehensions are the cheap way to walk 500 events in Python.
        rows = store.EventRows(
            event_ids=[e.event_id for e in fresh],
            user_ids=[e.user_id for e in fresh],
            names=[e.name for e in fresh],
            occurred_us=[e.occurred_time.seconds * 1_000_000 + e.occurred_time.nanos // 1000 for e in fresh],
            payloads=[e.SerializeToString() for e in fresh],
            lanes=[lane_of(app_id, e.user_id) for e in fresh],
        )
        stored = await store.insert_events(self._pool, app_id, rows, now, self.trace_context())
        if stored:
            self.queued()
        accepted = len(fresh) + duplicates_in_batch
        self._metrics.accepted.inc(accepted)
        self._metrics.duplicates.inc(accepted - stored)
        self._metrics.batch_size.observe(len(events))
        self._metrics.batch_latency.observe(time.perf_counter() - began)
        return accepted, accepted - stored, rejected
