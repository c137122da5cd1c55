"""The Grafana dashboard and Prometheus alert rules in deploy/, and the metric names and
expressions they hold (shared by tests/unit/test_monitoring_files.py and
tests/service/test_monitoring.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "nudge-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan"}
# What is not a metric name: strings, label matchers, ranges, grouping labels, variables.
_NOT_NAMES = re.compile(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\$\w+'
                        r"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def expressions() -> dict[str, list[str]]:
    """Every PromQL expression, by where it is: `alerts` and `dashboard` (panels' targets and
    the template variables' queries)."""
    board = dashboard()
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return {"alerts": [rule["expr"] for rule in alert_rules()], "dashboard": exprs}


def metric_names(expr: str) -> set[str]:
    """The series an expression reads: every identifier that is not a function, keyword or
    label (`label_values(m, l)`, a Grafana query, names `m`)."""
    expr = re.sub(r"label_values\(\s*([^,)]+),[^)]*\)", r"(\1)", expr)
    return {name for name in _IDENTIFIER.findall(_NOT_NAMES.sub(" ", expr)) if name.lower() not in _KEYWORDS}
