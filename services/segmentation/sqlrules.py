"""The segment language compiled to SQL over the whole population of an app.

`predicate` turns a rule into a boolean SQL expression over a `profiles` row (alias `p`),
meaning exactly what `rule_evaluation` means for one user; a property-based test holds them together.
Every value travels as a `$n` parameter. Each leaf is made two-valued (`coalesce(.., false)`)
so NOT behaves as in Python.

Event conditions become `p.user_id IN (SELECT user_id FROM <counters> ...)`: uncorrelated
subqueries that PostgreSQL runs once and probes as a hash table (a semi-join at the top of an
AND, a hashed SubPlan anywhere else), so a rule costs one pass over each counter it reads and
one over profiles. That needs the hash tables to fit in work_mem, which the caller raises
for these queries.

A property-filtered counter that no saved segment tracks yet (an EstimateAudience of a draft)
is computed from the raw recent events, exactly as saving it would backfill it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib import filters
from nudgelib.protoconv import to_timedelta
from nudgelib.versions import parse_version
from services.segmentation.rule_tree import DAY, attribute_value, counter_key, midnight, window_days

A = pb.AttributeOperator
P = common_pb2.PropertyOperator
E = pb.EventOperator
_SQL_ORDER = {A.ATTRIBUTE_OPERATOR_GREATER: ">", A.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL: ">=",
              A.ATTRIBUTE_OPERATOR_LESS: "<", A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL: "<="}
# Times past this cannot be handed to Python; a bound beyond it means "not in our lifetime".
_LAST_BOUND = "'9999-12-01 00:00:00+00'::timestamptz"
TICK = "interval '1 microsecond'"


class Params:
    """Collects `$n` parameters; the first ones are fixed by the caller (the app id is $1)."""

    def __init__(self, *first: Any) -> None:
        self.values: list[Any] = list(first)

    def add(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


@dataclass
class Compiler:
    params: Params
    now: datetime
    # Counter keys that have rows in event_totals / event_days (plain names always do).
    tracked: frozenset[str]
    # The app's saved rules, for membership conditions (inlined; cycles are refused on save).
    segments: dict[str, pb.Rule] = field(default_factory=dict)
    app: str = "$1"
    alias: str = "p"

    @property
    def today(self) -> date:
        return self.now.date()

    # ------------------------------------------------------------ predicates

    def predicate(self, rule: pb.Rule, depth: int = 0) -> str:
        node = rule.WhichOneof("node")
        if node == "group":
            parts = [self.predicate(r, depth) for r in rule.group.rules]
            if rule.group.operator == pb.GROUP_OPERATOR_AND:
                return "(" + " AND ".join(parts) + ")"
            if rule.group.operator == pb.GROUP_OPERATOR_OR:
                return "(" + " OR ".join(parts) + ")"
            return "(NOT (" + " OR ".join(parts) + "))"
        if node == "segment":
            target = self.segments.get(rule.segment.segment_id)
            if target is None or depth > 50:
                inside = "false"
            else:
                inside = self.predicate(target, depth + 1)
            return f"(NOT {inside})" if rule.segment.negate else inside
        leaf = getattr(self, f"_{node}")(getattr(rule, node))
        if node == "event":
            # `user_id IN (...)` is never NULL, and left bare a top-level one becomes a semi-join.
            return leaf
        return f"coalesce({leaf}, false)"

    def _attribute(self, c: pb.AttributeCondition) -> str:
        a = f"({self.alias}.attributes -> {self.params.add(c.name, 'text')})"
        op = c.operator
        if op == A.ATTRIBUTE_OPERATOR_EXISTS:
            return f"({a} IS NOT NULL)"
        if op == A.ATTRIBUTE_OPERATOR_IS_EMPTY:
            return f"({a} IS NULL OR {a} ->> 's' = '' OR {a} -> 'l' = '[]'::jsonb)"
        if op in (A.ATTRIBUTE_OPERATOR_EQUALS, A.ATTRIBUTE_OPERATOR_NOT_EQUALS):
            equal = self._attribute_equal(a, c.value)
            return equal if op == A.ATTRIBUTE_OPERATOR_EQUALS else f"(NOT coalesce({equal}, false))"
        if op in (A.ATTRIBUTE_OPERATOR_IN, A.ATTRIBUTE_OPERATOR_NOT_IN):
            strings = [v.string_value for v in c.values if v.WhichOneof("kind") == "string_value"]
            parts = [f"coalesce({a} ->> 's' = ANY({self.params.add(strings, 'text[]')}), false)"] if strings else []
            parts += [f"coalesce({self._attribute_equal(a, v)}, false)" for v in c.values
                      if v.WhichOneof("kind") != "string_value"]
            any_equal = "(" + " OR ".join(parts) + ")"
            return any_equal if op == A.ATTRIBUTE_OPERATOR_IN else f"(NOT {any_equal})"
        if op in _SQL_ORDER:
            return self._attribute_order(a, _SQL_ORDER[op], c.value)
        if op == A.ATTRIBUTE_OPERATOR_CONTAINS:
            v = self.params.add(c.value.string_value, "text")
            return f"(strpos({a} ->> 's', {v}) > 0 OR ({a} -> 'l') ? {v})"
        if op == A.ATTRIBUTE_OPERATOR_STARTS_WITH:
            return f"starts_with({a} ->> 's', {self.params.add(c.value.string_value, 'text')})"
        t = f"(({a} ->> 't')::timestamptz)"
        if op == A.ATTRIBUTE_OPERATOR_BEFORE:
            return f"({t} < {self.params.add(attribute_value(c.value), 'timestamptz')})"
        if op == A.ATTRIBUTE_OPERATOR_AFTER:
            return f"({t} > {self.params.add(attribute_value(c.value), 'timestamptz')})"
        cut = self.params.add(self.now - to_timedelta(c.duration), "timestamptz")
        if op == A.ATTRIBUTE_OPERATOR_WITHIN_LAST:
            return f"({t} >= {cut})"
        if op == A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO:
            return f"({t} < {cut})"
        return "false"

    def _attribute_equal(self, a: str, value) -> str:
        kind = value.WhichOneof("kind")
        v = attribute_value(value)
        if kind == "string_value":
            return f"({a} ->> 's' = {self.params.add(v, 'text')})"
        if kind == "bool_value":
            return f"({a} -> 'b' = {self.params.add(json.dumps(v), 'jsonb')})"
        if kind == "time_value":
            return f"(({a} ->> 't')::timestamptz = {self.params.add(v, 'timestamptz')})"
        if kind == "string_list_value":
            return f"({a} -> 'l' = {self.params.add(json.dumps(v), 'jsonb')})"
        return self._number(a, "=", kind, v)

    def _attribute_order(self, a: str, sql_op: str, value) -> str:
        kind = value.WhichOneof("kind")
        v = attribute_value(value)
        if kind == "string_value":
            return f"(({a} ->> 's') COLLATE \"C\" {sql_op} {self.params.add(v, 'text')})"
        if kind == "time_value":
            return f"(({a} ->> 't')::timestamptz {sql_op} {self.params.add(v, 'timestamptz')})"
        if kind in ("int_value", "double_value"):
            return self._number(a, sql_op, kind, v)
        return "false"

    def _number(self, a: str, sql_op: str, kind: str, v) -> str:
        # Two ints compare exactly (numeric); anything else as float8, as nudgelib.compare does.
        as_float = self.params.add(float(v), "float8")
        if kind == "int_value":
            exact = self.params.add(str(v), "numeric")
            return (f"(CASE WHEN {a} ? 'i' THEN ({a} ->> 'i')::numeric {sql_op} {exact}"
                    f" WHEN {a} ? 'd' THEN ({a} ->> 'd')::float8 {sql_op} {as_float} END)")
        return (f"(CASE WHEN {a} ? 'i' THEN ({a} ->> 'i')::float8 {sql_op} {as_float}"
                f" WHEN {a} ? 'd' THEN ({a} ->> 'd')::float8 {sql_op} {as_float} END)")

    def _inactive(self, c: pb.InactiveCondition) -> str:
        cut = self.params.add(self.now - to_timedelta(c.duration), "timestamptz")
        return f"({self.alias}.last_seen IS NULL OR {self.alias}.last_seen < {cut})"

    def _platform(self, c: pb.PlatformCondition) -> str:
        return f"({self.alias}.platforms && {self.params.add(list(c.platforms), 'smallint[]')})"

    def _app_version(self, c: pb.AppVersionCondition) -> str:
        op = {A.ATTRIBUTE_OPERATOR_EQUALS: "=", A.ATTRIBUTE_OPERATOR_NOT_EQUALS: "<>", **_SQL_ORDER}[c.operator]
        version = list(parse_version(c.version) or ())
        return f"({self.alias}.app_version_parts {op} {self.params.add(version, 'int[]')})"

    def _random_bucket(self, c: pb.RandomBucketCondition) -> str:
        # nudgelib.buckets: the first 8 bytes of sha256(salt:user) as an unsigned number, mod 100.
        # bigint is signed; 2^64 mod 100 = 16 puts negative ones right.
        salt = self.params.add(c.salt + ":", "text")
        signed = (f"(('x' || encode(substr(sha256(convert_to({salt} || {self.alias}.user_id, 'UTF8')), 1, 8),"
                  f" 'hex'))::bit(64)::bigint)")
        b = f"((({signed} % 100) + 100 + CASE WHEN {signed} < 0 THEN 16 ELSE 0 END) % 100)"
        return f"({b} >= {c.from_percent} AND {b} < {c.to_percent})"

    # ------------------------------------------------------------ events

    def _sources(self, c: pb.EventCondition) -> tuple[str, str]:
        """FROM items for (totals, days) of the condition's counter; each yields user_id and
        count (totals also first_at, last_at; days also day)."""
        key = counter_key(c)
        if key in self.tracked or not c.property_filters:
            k = self.params.add(key, "text")
            return (f"(SELECT user_id, count, first_at, last_at FROM event_totals"
                    f" WHERE app_id = {self.app} AND key = {k}) t",
                    f"(SELECT user_id, day, count FROM event_days WHERE app_id = {self.app} AND key = {k}) d")
        raw = self.raw_events(c.name, filters.compile_filters(c.property_filters))
        return (f"(SELECT user_id, count(*) AS count, min(occurred_at) AS first_at,"
                f" max(occurred_at) AS last_at FROM {raw} GROUP BY user_id) t",
                f"(SELECT user_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS count"
                f" FROM {raw} GROUP BY 1, 2) d")

    def raw_events(self, name: str, matching: tuple[filters.Filter, ...]) -> str:
        """The recent events of one name matching filters, as a FROM item `r`."""
        conditions = " AND ".join(f"coalesce({property_predicate(self.params, f, 'r.properties')}, false)"
                                  for f in matching) or "true"
        return (f"(SELECT r.user_id, r.occurred_at FROM recent_events r WHERE r.app_id = {self.app}"
                f" AND r.name = {self.params.add(name, 'text')} AND {conditions}) r")

    def _in(self, subquery: str) -> str:
        return f"({self.alias}.user_id IN ({subquery}))"

    def _event(self, c: pb.EventCondition) -> str:
        op = c.operator
        if op == E.EVENT_OPERATOR_AT_LEAST and c.count == 0:
            return "true"
        totals, days = self._sources(c)
        if op == E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
            cut = self.params.add(self.now - to_timedelta(c.window), "timestamptz")
            return self._in(f"SELECT user_id FROM {totals} WHERE last_at < {cut}")
        window = window_days(c)
        if op == E.EVENT_OPERATOR_EACH_DAY:
            first = self.params.add(self.today - (window - 1) * DAY, "date")
            today = self.params.add(self.today, "date")
            return self._in(f"SELECT user_id FROM {days} WHERE day BETWEEN {first} AND {today}"
                            f" AND count > 0 GROUP BY user_id HAVING count(*) = {window}")
        if op == E.EVENT_OPERATOR_NEVER:
            op, count = E.EVENT_OPERATOR_EXACTLY, 0
        else:
            count = c.count
        if window:
            first = self.params.add(self.today - (window - 1) * DAY, "date")
            today = self.params.add(self.today, "date")
            rows = f"SELECT user_id FROM {days} WHERE day BETWEEN {first} AND {today}"
            having = " GROUP BY user_id HAVING sum(count) "
        else:
            rows = f"SELECT user_id FROM {totals} WHERE true"
            having = " AND count "
        if op == E.EVENT_OPERATOR_AT_LEAST:
            return self._in(f"{rows}{having}>= {self.params.add(count, 'bigint')}")
        if op == E.EVENT_OPERATOR_AT_MOST:
            more = self._in(f"{rows}{having}> {self.params.add(count, 'bigint')}")
            return f"(NOT {more})"
        # EXACTLY: zero means no rows at all (counters hold no zero rows).
        if count == 0:
            return f"(NOT {self._in(rows)})"
        return self._in(f"{rows}{having}= {self.params.add(count, 'bigint')}")

    # ------------------------------------------------------------ time bounds

    def bound(self, rule: pb.Rule) -> str | None:
        """A SQL expression for the first instant after now at which the rule's answer may
        change by time alone, per user; never later than the true one (rule_evaluation's Node.change), may
        be earlier. NULL: it cannot. Membership conditions add nothing: the referenced
        segment's own conditions are accounted where that segment is."""
        parts = [b for b in self._bounds(rule) if b]
        if not parts:
            return None
        # least() skips NULLs; a bound past the last one Python can hold reads as none.
        return f"nullif(least({', '.join(parts)}, {_LAST_BOUND}), {_LAST_BOUND})"

    def _bounds(self, rule: pb.Rule) -> list[str]:
        node = rule.WhichOneof("node")
        if node == "group":
            return [b for r in rule.group.rules for b in self._bounds(r)]
        p = self.alias
        if node == "attribute" and rule.attribute.operator in (A.ATTRIBUTE_OPERATOR_WITHIN_LAST,
                                                               A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO):
            t = f"(({p}.attributes -> {self.params.add(rule.attribute.name, 'text')}) ->> 't')::timestamptz"
            return [self._after(t, to_timedelta(rule.attribute.duration))]
        if node == "inactive":
            return [self._after(f"{p}.last_seen", to_timedelta(rule.inactive.duration))]
        if node != "event":
            return []
        c = rule.event
        window = window_days(c)
        if c.operator != E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO and not window:
            return []  # counts over all time do not change by themselves
        k = self.params.add(counter_key(c), "text")
        if c.operator == E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
            # Exact for the users it concerns; the correlated read runs only for them.
            d = self.params.add(to_timedelta(c.window), "interval")
            now = self.params.add(self.now, "timestamptz")
            recent = (f"SELECT user_id FROM event_totals WHERE app_id = {self.app} AND key = {k}"
                      f" AND last_at + {d} >= {now}")
            exact = (f"(SELECT last_at + {d} + {TICK} FROM event_totals WHERE app_id = {self.app}"
                     f" AND key = {k} AND user_id = {p}.user_id)")
            return [f"(CASE WHEN {self._in(recent)} THEN {exact} END)"]
        # Any day of the counter still inside the window (or ahead): the answer may change at
        # the next midnight; the sweeper then computes the exact instant.
        first = self.params.add(self.today - (window - 1) * DAY, "date")
        tomorrow = self.params.add(midnight(self.today + DAY), "timestamptz")
        rows = f"SELECT user_id FROM event_days WHERE app_id = {self.app} AND key = {k} AND day >= {first}"
        return [f"(CASE WHEN {self._in(rows)} THEN {tomorrow} END)"]

    def _after(self, instant: str, limit: timedelta) -> str:
        """rule_evaluation._after in SQL: when `now - instant > limit` flips, if it still can."""
        d = self.params.add(limit, "interval")
        now = self.params.add(self.now, "timestamptz")
        return f"(CASE WHEN {instant} + {d} >= {now} THEN {instant} + {d} + {TICK} END)"


def _property_at(params: Params, f: filters.Filter, column: str) -> str:
    """The jsonb at the filter's dotted path, SQL NULL when absent: as filters.lookup, a path
    only steps into objects (jsonb's #> would also step into an array by index)."""
    path = f.path
    at = f"({column} #> {params.add(list(path), 'text[]')})"
    if len(path) == 1:
        return at
    guards = " AND ".join(f"jsonb_typeof({column} #> {params.add(list(path[:i]), 'text[]')}) = 'object'"
                          for i in range(1, len(path)))
    return f"(CASE WHEN {guards} THEN {at} END)"


def _within_distance(params: Params, x: str, circle: tuple[float, float, float]) -> str:
    """filters.location and filters.distance_meters in SQL: haversine on the mean Earth radius."""
    lat, lon, radius = (params.add(v, "float8") for v in circle)
    plat, plon = f"(({x} ->> 'latitude')::float8)", f"(({x} ->> 'longitude')::float8)"
    h = (f"(sin(radians({plat} - {lat}) / 2) ^ 2 + cos(radians({lat})) * cos(radians({plat}))"
         f" * sin(radians({plon} - {lon}) / 2) ^ 2)")
    return (f"(CASE WHEN jsonb_typeof({x}) = 'object' AND jsonb_typeof({x} -> 'latitude') = 'number'"
            f" AND jsonb_typeof({x} -> 'longitude') = 'number' THEN"
            f" {plat} BETWEEN -90 AND 90 AND {plon} BETWEEN -180 AND 180"
            f" AND 2 * {filters.EARTH_RADIUS_METERS} * asin(least(1.0, sqrt({h}))) <= {radius} ELSE false END)")


def property_predicate(params: Params, f: filters.Filter, column: str) -> str:
    """One property filter over a jsonb column of properties, as filters.matches."""
    x = _property_at(params, f, column)
    op = f.operator
    if op == P.PROPERTY_OPERATOR_EXISTS:
        return f"({x} IS NOT NULL AND jsonb_typeof({x}) <> 'null')"
    if op == P.PROPERTY_OPERATOR_IS_EMPTY:
        return f"({x} IS NULL OR {x} IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb))"
    if op in (P.PROPERTY_OPERATOR_EQUALS, P.PROPERTY_OPERATOR_NOT_EQUALS):
        equal = _property_equal(params, x, f.value)
        return equal if op == P.PROPERTY_OPERATOR_EQUALS else f"(NOT coalesce({equal}, false))"
    if op in (P.PROPERTY_OPERATOR_IN, P.PROPERTY_OPERATOR_NOT_IN):
        any_equal = "(" + " OR ".join(f"coalesce({_property_equal(params, x, v)}, false)" for v in f.value) + ")"
        return any_equal if op == P.PROPERTY_OPERATOR_IN else f"(NOT {any_equal})"
    if op in _SQL_ORDER:
        sql_op = _SQL_ORDER[op]
        if isinstance(f.value, str):
            return (f"(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') COLLATE \"C\" {sql_op}"
                    f" {params.add(f.value, 'text')})")
        return f"(jsonb_typeof({x}) = 'number' AND ({x})::float8 {sql_op} {params.add(f.value, 'float8')})"
    if op == P.PROPERTY_OPERATOR_CONTAINS:
        v = params.add(f.value, "text")
        return (f"(CASE jsonb_typeof({x}) WHEN 'string' THEN strpos({x} #>> '{{}}', {v}) > 0"
                f" WHEN 'array' THEN {x} ? {v} ELSE false END)")
    if op == P.PROPERTY_OPERATOR_STARTS_WITH:
        return f"(jsonb_typeof({x}) = 'string' AND starts_with({x} #>> '{{}}', {params.add(f.value, 'text')}))"
    if op == P.PROPERTY_OPERATOR_WITHIN_DISTANCE:
        return _within_distance(params, x, f.value)
    return "false"


def _property_equal(params: Params, x: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"({x} = {params.add(json.dumps(value), 'jsonb')})"
    if isinstance(value, str):
        return f"(jsonb_typeof({x}) = 'string' AND {x} #>> '{{}}' = {params.add(value, 'text')})"
    return f"(jsonb_typeof({x}) = 'number' AND ({x})::float8 = {params.add(float(value), 'float8')})"
