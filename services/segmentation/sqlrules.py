"""The segment language compiled to SQL over the whole population of an app.

`predicate` turns a rule into a boolean SQL expression over a `profiles` row (alias `p`),
meaning exactly what `rule_evaluation` means for one user; a property-based test holds them together.
Every value travels as a `$n` parameter. Each leaf is made two-valued (`coalesce(.., false)`)
so NOT behaves as in Python.

Event conditions become `EXISTS (SELECT 1 FROM (SELECT user_id FROM <counters> ...) s WHERE
s.user_id = p.user_id)`: PostgreSQL runs each subquery once and probes it as a hash table (a
semi-join at the top of an AND, a hashed SubPlan anywhere else), so a rule costs one pass over
each counter it reads and one over profiles; on Citus the correlation on the user id keeps it
within each shard. That needs the hash tables to fit in work_mem, which the caller raises
for these queries.

A property-filtered counter that no saved segment tracks yet (an EstimateAudience of a draft)
is read from a `Draft`: its counts, folded from ingestion's past events exactly as saving it
would fill it, handed over as array parameters in the shape of the counter tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.protoconv import to_timedelta
from nudgelib.versions import parse_version
from services.segmentation.rule_tree import DAY, attribute_value, counter_key, midnight, window_days

A = pb.AttributeOperator
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


@dataclass(frozen=True)
class Draft:
    """A counter not stored anywhere: event_totals' and event_days' columns as arrays."""

    users: list[str]
    counts: list[int]
    firsts: list[datetime]
    lasts: list[datetime]
    day_users: list[str]
    days: list[date]
    day_counts: list[int]

    @classmethod
    def of(cls, folded, key: str) -> Draft:
        """The counter `key` of an aggregates.Folded."""
        totals = sorted((u, t) for (u, k), t in folded.totals.items() if k == key)
        days = sorted((u, d, n) for (u, k, d), n in folded.days.items() if k == key)
        return cls([u for u, _ in totals], [t[0] for _, t in totals], [t[1] for _, t in totals],
                   [t[2] for _, t in totals], [u for u, _, _ in days], [d for _, d, _ in days],
                   [n for _, _, n in days])


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
    # Counters of a draft rule that no saved segment tracks, by key.
    drafts: dict[str, Draft] = field(default_factory=dict)

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
            # EXISTS is never NULL, and left bare a top-level one becomes a semi-join.
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

    def _sources(self, c: pb.EventCondition) -> tuple[Callable[[], str], Callable[[], str]]:
        """Makers of the FROM items for (totals, days) of the condition's counter; each yields
        user_id and count (totals also first_at, last_at; days also day). Made only when used:
        a parameter the statement does not use has no type PostgreSQL can infer."""
        key = counter_key(c)
        draft = self.drafts.get(key)
        p = self.params
        if key in self.tracked or not c.property_filters or draft is None:
            # A filtered counter neither stored nor drafted has no rows: nobody matched yet.
            return (lambda: f"(SELECT user_id, count, first_at, last_at FROM event_totals"
                            f" WHERE app_id = {self.app} AND key = {p.add(key, 'text')}) t",
                    lambda: f"(SELECT user_id, day, count FROM event_days WHERE app_id = {self.app}"
                            f" AND key = {p.add(key, 'text')}) d")
        return (lambda: f"(SELECT * FROM unnest({p.add(draft.users, 'text[]')}, {p.add(draft.counts, 'bigint[]')},"
                        f" {p.add(draft.firsts, 'timestamptz[]')}, {p.add(draft.lasts, 'timestamptz[]')})"
                        f" AS t(user_id, count, first_at, last_at)) t",
                lambda: f"(SELECT * FROM unnest({p.add(draft.day_users, 'text[]')}, {p.add(draft.days, 'date[]')},"
                        f" {p.add(draft.day_counts, 'integer[]')}) AS d(user_id, day, count)) d")

    def _in(self, subquery: str) -> str:
        # A correlated EXISTS on the user id, not `user_id IN (subquery)`: Citus refuses an IN
        # subquery outside the WHERE clause (a recompute's select list) over a distributed
        # table, and pushes an EXISTS correlated on the distribution column down to each shard
        # (docs/citus.md). PostgreSQL plans both the same way: a semi-join at the top of an AND,
        # and elsewhere a hashed SubPlan (the EXISTS turned into an ANY over the subquery).
        return f"(EXISTS (SELECT 1 FROM ({subquery}) AS s WHERE s.user_id = {self.alias}.user_id))"

    def _event(self, c: pb.EventCondition) -> str:
        op = c.operator
        if op == E.EVENT_OPERATOR_AT_LEAST and c.count == 0:
            return "true"
        totals, days = self._sources(c)
        if op == E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
            cut = self.params.add(self.now - to_timedelta(c.window), "timestamptz")
            return self._in(f"SELECT user_id FROM {totals()} WHERE last_at < {cut}")
        window = window_days(c)
        if op == E.EVENT_OPERATOR_EACH_DAY:
            first = self.params.add(self.today - (window - 1) * DAY, "date")
            today = self.params.add(self.today, "date")
            return self._in(f"SELECT user_id FROM {days()} WHERE day BETWEEN {first} AND {today}"
                            f" AND count > 0 GROUP BY user_id HAVING count(*) = {window}")
        if op == E.EVENT_OPERATOR_NEVER:
            op, count = E.EVENT_OPERATOR_EXACTLY, 0
        else:
            count = c.count
        if window:
            first = self.params.add(self.today - (window - 1) * DAY, "date")
            today = self.params.add(self.today, "date")
            rows = f"SELECT user_id FROM {days()} WHERE day BETWEEN {first} AND {today}"
            having = " GROUP BY user_id HAVING sum(count) "
        else:
            rows = f"SELECT user_id FROM {totals()} WHERE true"
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
