"""deploy/grafana and deploy/prometheus: well-formed, and in step with the API (which RPCs
stream). That the metrics they name exist is tests/service/test_monitoring.py's."""

from __future__ import annotations

import re
from pathlib import Path

from tests.monitoring_files import ROOT, alert_rules, dashboard, expressions, metric_names

STREAMS = re.compile(r'method!~"([^"]+)"')


def streaming_rpcs() -> set[str]:
    names = set()
    for proto in (ROOT / "protos").rglob("*.proto"):
        text = proto.read_text(encoding="utf-8")
        names |= set(re.findall(r"rpc\s+(\w+)\s*\([^)]*\)\s*returns\s*\(\s*stream\b", text))
        names |= set(re.findall(r"rpc\s+(\w+)\s*\(\s*stream\b", text))
    return names


def test_every_alert_has_a_severity_a_summary_and_an_expression() -> None:
    rules = alert_rules()
    assert len(rules) >= 10
    for rule in rules:
        assert re.fullmatch(r"Nudge[A-Z]\w+", rule["alert"]), rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert metric_names(rule["expr"]), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_the_alerts_cover_what_the_issue_asks_for() -> None:
    names = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    for needed in ("nudge_log_oldest_age_seconds", "nudge_log_backlog", "nudge_log_dead_lettered_total",
                   "nudge_decision_release_failed_total", "nudge_rpc_requests_total",
                   "nudge_rpc_duration_seconds_bucket", "nudge_ingestion_backpressure_refusals_total"):
        assert needed in names, needed


def test_latency_leaves_out_exactly_the_streaming_rpcs() -> None:
    expected = streaming_rpcs()
    assert {"Subscribe", "StreamEvents"} <= expected
    seen = 0
    for where, exprs in expressions().items():
        for expr in exprs:
            if "nudge_rpc_duration_seconds" in expr:
                [excluded] = STREAMS.findall(expr)
                assert set(excluded.split("|")) == expected, (where, expr)
                seen += 1
    assert seen >= 3


def test_dashboard_panels_are_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert "datasource" in variables
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [p for p in board["panels"] if p["type"] != "row"]
    assert len(graphs) >= 15
    for panel in graphs:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert metric_names(target["expr"]), (panel["title"], target["expr"])
            for used in re.findall(r"\$(\w+)", target["expr"]):
                assert used in variables or used.startswith("__"), (panel["title"], used)


def test_the_metric_name_reader_sees_selectors_and_template_queries() -> None:
    assert metric_names('sum by (a, le) (rate(nudge_x_total{a="b"}[$__rate_interval])) / up > 0.5') == {
        "nudge_x_total", "up"}
    assert metric_names("histogram_quantile(0.99, rate(other_metric[5m])) and on (job) x:y") == {
        "other_metric", "x:y"}
    assert metric_names("label_values(nudge_y, service)") == {"nudge_y"}
    assert Path(ROOT / "deploy" / "grafana" / "nudge-dashboard.json").is_file()
