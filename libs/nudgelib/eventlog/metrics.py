"""The series every log reader publishes, labelled by log (the producer's log table, e.g.
`ingestion`, `segmentation`, `delivery`) and consumer."""

from __future__ import annotations

import prometheus_client as prom


class LogMetrics:
    def __init__(self, registry: prom.CollectorRegistry, log: str, consumers: tuple[str, ...]) -> None:
        self.log = log
        labels = ["log", "consumer"]
        self._backlog = prom.Gauge(
            "nudge_log_backlog", "Items waiting for a consumer (counted up to a bound), held apps' included",
            labels, registry=registry)
        self._age = prom.Gauge(
            "nudge_log_oldest_age_seconds", "Age of the oldest item waiting for a consumer", labels, registry=registry)
        self._forwarded = prom.Counter(
            "nudge_log_forwarded", "Items a consumer took", labels, registry=registry)
        self._failures = prom.Counter(
            "nudge_log_failures", "Consumer calls that failed (split calls included) and will be retried",
            labels, registry=registry)
        self._dead = prom.Counter(
            "nudge_log_dead_lettered", "Items set aside after a consumer refused them too often", labels,
            registry=registry)
        self._cycle = prom.Histogram(
            "nudge_log_cycle_seconds", "One claim-forward-commit cycle of a reader loop", labels,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=registry)
        for c in consumers:  # present from the start, at zero
            for series in (self._backlog, self._age, self._forwarded, self._failures, self._dead):
                series.labels(log, c)

    def backlog(self, consumer: str, items: int, age: float) -> None:
        self._backlog.labels(self.log, consumer).set(items)
        self._age.labels(self.log, consumer).set(age)

    def cycle(self, consumer: str, forwarded: int, failures: int, dead: int, seconds: float) -> None:
        self._forwarded.labels(self.log, consumer).inc(forwarded)
        self._failures.labels(self.log, consumer).inc(failures)
        self._dead.labels(self.log, consumer).inc(dead)
        self._cycle.labels(self.log, consumer).observe(seconds)

    def failed(self, consumer: str) -> None:
        self._failures.labels(self.log, consumer).inc()
