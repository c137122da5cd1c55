"""Prometheus metrics: RPC count and latency by method and status code, served over HTTP.

Each process has its own registry, so tests that run several services in one process do not
collide, and each service exposes only its own series.
"""

from __future__ import annotations

import prometheus_client as prom


class RpcMetrics:
    def __init__(self, service: str, registry: prom.CollectorRegistry) -> None:
        self.registry = registry
        self._requests = prom.Counter(
            "nudge_rpc_requests",
            "gRPC calls handled, by method and status code",
            ["service", "method", "code"],
            registry=registry,
        )
        self._latency = prom.Histogram(
            "nudge_rpc_duration_seconds",
            "gRPC call latency, by method and status code",
            ["service", "method", "code"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self._service = service
        # Resolving label children is the costly part; do it once per (method, code).
        self._children: dict[tuple[str, str], tuple[prom.Counter, prom.Histogram]] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        children = self._children.get(key)
        if children is None:
            labels = (self._service, method, code)
            children = (self._requests.labels(*labels), self._latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def serve_metrics(registry: prom.CollectorRegistry, host: str, port: int):
    """Starts the /metrics HTTP endpoint on a daemon thread; returns (server, port)."""
    server, thread = prom.start_http_server(port, addr=host, registry=registry)
    return server, thread, server.server_address[1]
