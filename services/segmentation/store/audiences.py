"""Whole-population statements over an app's profiles, with predicates compiled from the
rules by sqlrules: audience counts, member pages, and what a rules change sets off
(memberships recomputed, counters dropped), and what a new counter's past is read up to."""

from __future__ import annotations

from typing import Any

import asyncpg


async def audience_settings(conn: asyncpg.Connection, work_mem_mb: int, timeout_seconds: float) -> None:
    """For the transaction: room for the hash tables of an audience query, and a time limit."""
    await conn.execute(
        "SELECT set_config('work_mem', $1, true), set_config('statement_timeout', $2, true)",
        f"{work_mem_mb}MB", f"{int(timeout_seconds * 1000)}")


async def count_matching(conn: asyncpg.Connection, predicate: str, params: list[Any]) -> int:
    # The rule in WHERE: its top-level event conditions become semi-joins.
    return await conn.fetchval(f"SELECT count(*) FROM profiles p WHERE p.app_id = $1 AND {predicate}", *params)


async def count_users(conn: asyncpg.Connection | asyncpg.Pool, app_id: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM profiles WHERE app_id = $1", app_id)


async def members_page(conn: asyncpg.Connection, predicate: str, params: list[Any]) -> list[str]:
    """params: app ($1), after ($2), limit ($3), then the predicate's."""
    rows = await conn.fetch(
        f"SELECT p.user_id FROM profiles p WHERE p.app_id = $1 AND p.user_id > $2 AND {predicate}"
        " ORDER BY p.user_id LIMIT $3", *params)
    return [r["user_id"] for r in rows]


async def recompute(conn: asyncpg.Connection, hits: str, bound: str | None, params: list[Any]) -> int:
    """Recomputes the stored membership of a group of segments for every user of the app,
    silently (a change of rules is announced as such, not as entries), and brings
    valid_until forward where a segment may change by time sooner. Only rows that change are
    written. params: app ($1), the group's seqs ($2, integer[]), then those of the compiled
    expressions (over the alias q): `hits`, the seqs (ascending) of the group the user is in;
    `bound`, the earliest instant they may change by time."""
    bound = bound or "NULL::timestamptz"
    result = await conn.execute(
        f"""INSERT INTO memberships AS m (app_id, user_id, segments, valid_until)
            SELECT $1, x.user_id,
                   ARRAY(SELECT s FROM unnest(x.segments) s WHERE s <> ALL($2::integer[])) || x.hits,
                   CASE WHEN x.bound < coalesce(x.valid_until, 'infinity') THEN x.bound ELSE x.valid_until END
            FROM (SELECT q.user_id, {hits} AS hits, {bound} AS bound,
                         coalesce(s.segments, '{{}}') AS segments, s.valid_until
                  FROM profiles q LEFT JOIN memberships s ON s.app_id = q.app_id AND s.user_id = q.user_id
                  WHERE q.app_id = $1
                  OFFSET 0) x  -- a fence: each expression is computed once per user
            WHERE NOT (x.segments @> x.hits AND cardinality(x.hits) =
                       (SELECT count(*) FROM unnest(x.segments) s WHERE s = ANY($2::integer[])))
               OR x.bound < coalesce(x.valid_until, 'infinity')
            ORDER BY x.user_id
            ON CONFLICT (app_id, user_id) DO UPDATE SET segments = excluded.segments,
                valid_until = excluded.valid_until, version = m.version + 1""", *params)
    return int(result.split()[-1])


async def applied_positions(conn: asyncpg.Connection | asyncpg.Pool, source: str, app_id: str) -> dict[int, int]:
    """Per lane of the log `source`, the position of the app's last item applied here
    (nudgelib.eventlog.positions). Under the app's exclusive lock this is an exact boundary:
    every event at or below it has been counted, every one above it will be, by the rules
    that are current when it is applied."""
    rows = await conn.fetch("SELECT lane, position FROM log_positions WHERE source = $1 AND app_id = $2",
                            source, app_id)
    return {r["lane"]: r["position"] for r in rows}


async def has_profiles(conn: asyncpg.Connection | asyncpg.Pool, app_id: str) -> bool:
    """Whether any user of the app is known: applying an event creates its user's profile, so
    an app without profiles has no past events to count."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM profiles WHERE app_id = $1)", app_id)


async def drop_counters(conn: asyncpg.Connection, app_id: str, keys: list[str]) -> None:
    if keys:
        await conn.execute("DELETE FROM event_days WHERE app_id = $1 AND key = any($2::text[])", app_id, keys)
        await conn.execute("DELETE FROM event_totals WHERE app_id = $1 AND key = any($2::text[])", app_id, keys)
