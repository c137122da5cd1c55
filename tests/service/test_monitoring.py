"""Every metric the Grafana dashboard and the Prometheus alert rules in deploy/ read is one the
running services publish: the four services are scraped on their /metrics ports."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from tests.helpers import Clients, event, track
from tests.monitoring_files import expressions, metric_names

# The series a family of each type is read as.
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",),
            "unknown": ("",)}


def published(text: str) -> set[str]:
    """Series names in a /metrics page, those of labelled families without samples yet included."""
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


async def scrape(port: int) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())


async def test_every_metric_the_dashboard_and_alerts_read_is_published(stack, app):
    # A call of each kind, so that the RPC series have samples too.
    api = Clients(stack.channel)
    await api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=app.auth("admin"))
    await api.ingestion.TrackEvents(track([event("monitoring-1", "u1", "app_open")]), metadata=app.auth("events"))

    names: set[str] = set()
    for name, host in stack.hosts.items():
        assert host.metrics_port, name
        page = await scrape(host.metrics_port)
        names |= published(page)
    assert "nudge_rpc_requests_total" in names and "nudge_log_backlog" in names

    for where, exprs in expressions().items():
        used = set().union(*(metric_names(expr) for expr in exprs))
        assert used, where
        missing = used - names
        assert not missing, f"{where} reads series no service publishes: {sorted(missing)}"


def test_the_reader_sees_a_name_no_service_has() -> None:
    page = "# HELP nudge_x_total h\n# TYPE nudge_x_total counter\nnudge_x_total 1.0\n"
    assert published(page) == {"nudge_x_total", "nudge_x_created"}
    assert metric_names("rate(nudge_y_total[5m])") - published(page) == {"nudge_y_total"}
