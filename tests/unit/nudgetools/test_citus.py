"""The SQL the services run keeps away from what a live Citus run refused (docs/citus.md),
read from the source with `ast` (string literals outside docstrings, f-strings with their
placeholders as `{}`), and the segment compiler writes no IN subquery. The rules:

- no `ctid`;
- nothing but immutable expressions in `ON CONFLICT ... DO UPDATE SET` (no now() and kin);
- `LATERAL` only in the event log's readers, whose tables (the logs) all stay local;
- `FOR UPDATE` only over one user (`user_id = $n`) or over reference or local tables.

The catalog side (keys, triggers, foreign keys) is tests/service/test_citus_keys.py.
"""

from __future__ import annotations

import ast
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgetools import citus
from services.segmentation.sqlrules import Compiler, Params
from tests.unit.segmentation.builders import attr, ev

REPO = Path(__file__).resolve().parents[3]
SOURCES = [p for root in ("services", "libs/nudgelib") for p in sorted((REPO / root).rglob("*.py"))]

# The event log's readers (claims, reads, held apps, backlog) join their cursors to the log
# LATERAL, which Citus refuses over a distributed table: every log stays local
# (test_every_log_stays_on_the_coordinator), docs/citus.md, "The logs stay on the coordinator".
LATERAL_OVER_LOGS = {"libs/nudgelib/eventlog/dispatcher.py"}

_VOLATILE = re.compile(r"\b(now|clock_timestamp|statement_timestamp|transaction_timestamp|random|"
                       r"gen_random_uuid|nextval)\s*\(|\b(current_timestamp|localtimestamp)\b", re.I)
_DO_UPDATE = re.compile(r"DO\s+UPDATE\s+SET(.*?)(?:\bRETURNING\b|\bWHERE\b|$)", re.I | re.S)
_FROM_TABLE = re.compile(r"\bFROM\s+(?:\{[^}]*\}\.|[a-z_]+\.)?([a-z_{}.]+)", re.I)


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def sql_strings(path: Path) -> list[str]:
    """The string literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out, inside = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if id(node) in docstrings or id(node) in inside:
            continue
        text = _text(node)
        if text is not None:
            out.append(text)
    return out


def _short_names(kinds: set[str]) -> set[str]:
    """Table names (without schema) that are only ever of these kinds."""
    by_name: dict[str, set[str]] = {}
    for name, p in citus.TABLES.items():
        by_name.setdefault(name.split(".")[1], set()).add(p.kind)
    return {n for n, k in by_name.items() if k <= kinds}


def offences(path: Path, rel: str = "") -> list[str]:
    """What the module's SQL breaks of the rules above; `rel` names it (default: its path)."""
    rel = rel or path.relative_to(REPO).as_posix()
    not_distributed = _short_names({citus.REFERENCE, citus.LOCAL})
    found = []
    for sql in sql_strings(path):
        if re.search(r"\bctid\b", sql, re.I):
            found.append(f"{rel}: ctid in {sql.strip()[:80]!r}")
        for clause in _DO_UPDATE.findall(sql):
            if _VOLATILE.search(clause):
                found.append(f"{rel}: a function in DO UPDATE SET: {clause.strip()[:80]!r}")
        if re.search(r"\bLATERAL\b", sql, re.I) and rel not in LATERAL_OVER_LOGS:
            found.append(f"{rel}: LATERAL in {sql.strip()[:80]!r}")
        if re.search(r"\bFOR\s+(UPDATE|NO\s+KEY\s+UPDATE|SHARE)\b", sql, re.I):
            tables = {t.split(".")[-1] for t in _FROM_TABLE.findall(sql)}
            one_user = re.search(r"\buser_id\s*=\s*\$\d", sql) is not None
            if not one_user and not (tables and tables <= not_distributed):
                found.append(f"{rel}: FOR UPDATE over {sorted(tables)} for more than one user")
    return found


def test_every_log_stays_on_the_coordinator():
    """The readers' LATERAL reads, and the writers' gate that keeps a reader from passing an
    item still being committed, hold only for a log committed with the coordinator's own
    transaction."""
    from services.delivery.interaction_events import LOG as delivery_log
    from services.ingestion.store import LOG as ingestion_log
    from services.segmentation.announcements import LOG as segmentation_log

    logs = {f"{spec.source}.{spec.table}": citus.TABLES[f"{spec.source}.{spec.table}"].kind
            for spec in (ingestion_log, segmentation_log, delivery_log)}
    assert logs == {"ingestion.events": citus.LOCAL, "segmentation.outbox": citus.LOCAL,
                    "delivery.event_outbox": citus.LOCAL}


def test_the_services_sql_avoids_what_citus_refuses():
    assert [o for path in SOURCES for o in offences(path)] == []


@pytest.mark.parametrize("sql, refused", [
    ("DELETE FROM t WHERE ctid = any(ARRAY(SELECT ctid FROM t LIMIT 5))", True),
    ("INSERT INTO profiles AS p (app_id) VALUES ($1) ON CONFLICT (app_id) DO UPDATE SET updated_at = now()", True),
    ("INSERT INTO profiles AS p (app_id) VALUES ($1) ON CONFLICT (app_id) DO UPDATE SET updated_at = excluded.updated_at",
     False),
    ("SELECT * FROM profiles p WHERE p.user_id = any($2) FOR UPDATE OF p SKIP LOCKED", True),
    ("SELECT 1 FROM profiles WHERE app_id = $1 AND user_id = $2 FOR UPDATE", False),
    ("SELECT * FROM pending_sends WHERE due_at <= $1 FOR UPDATE SKIP LOCKED", False),
    ("SELECT * FROM unnest($2::text[]) u LEFT JOIN LATERAL (SELECT * FROM profiles LIMIT 1) p ON true", True),
])
def test_the_lint_tells_refused_sql_from_accepted(tmp_path, sql, refused):
    probe = tmp_path / "probe.py"
    probe.write_text(f'"""A docstring may say ctid and LATERAL."""\nQUERY = {sql!r}\n')
    found = offences(probe, "services/probe.py")
    assert bool(found) == refused, found


def test_event_conditions_compile_to_exists_not_in():
    """Under NOT and OR (a recompute puts predicates in a select list) as at the top."""
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    rule = pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_OR, rules=[
        ev("purchase", pb.EVENT_OPERATOR_AT_LEAST, count=2, window=7),
        pb.Rule(group=pb.Group(operator=pb.GROUP_OPERATOR_NOT, rules=[
            ev("open", pb.EVENT_OPERATOR_AT_MOST, count=1)])),
        ev("open", pb.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=3),
        attr("plan", pb.ATTRIBUTE_OPERATOR_EQUALS, string_value="pro"),
    ]))
    sql = Compiler(Params("app"), now, frozenset({"purchase", "open"})).predicate(rule)
    assert " IN (" not in sql.upper()
    assert sql.count("EXISTS (SELECT 1 FROM (") == 3
    assert sql.count("s.user_id = p.user_id") == 3
