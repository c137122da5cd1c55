"""Ingestion's Prometheus series, registered on the service's own registry (its log's readers
publish nudgelib.eventlog.metrics)."""

from __future__ import annotations

import prometheus_client as prom



class IngestionMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.accepted = prom.Counter(
            "nudge_ingestion_events_accepted", "Events acknowledged as durable (duplicates included)",
            registry=registry)
        self.duplicates = prom.Counter(
            "nudge_ingestion_events_duplicate", "Accepted events already stored before (producer retries)",
            registry=registry)
        self.rejected = prom.Counter(
            "nudge_ingestion_events_rejected", "Events refused, by reason", ["reason"], registry=registry)
        self.batch_latency = prom.Histogram(
            "nudge_ingestion_batch_duration_seconds", "Time to validate and commit one batch of events",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry)
        self.batch_size = prom.Histogram(
            "nudge_ingestion_batch_events", "Events per batch received",
            buckets=(1, 10, 50, 100, 250, 500, 1000), registry=registry)
        self.refused = prom.Counter(
            "nudge_ingestion_backpressure_refusals", "Calls answered RESOURCE_EXHAUSTED, by bound",
            ["reason"], registry=registry)
        self.memory = prom.Gauge(
            "nudge_ingestion_resident_memory_bytes", "Resident memory of this process, as backpressure sees it",
            registry=registry)
        # Label children resolved once per reason: resolving them is the costly part.
        self._rejected: dict[str, prom.Counter] = {}

    def reject(self, reason: str) -> None:
        child = self._rejected.get(reason)
        if child is None:
            child = self._rejected[reason] = self.rejected.labels(reason)
        child.inc()
