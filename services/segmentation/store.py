"""SQL for segmentation's own schema: profiles and memberships, event counters, raw recent
events, segments, the announcement outbox. Every batch is one statement (unnest), never a
query per item.

Locking, so that memberships diff against exactly what was announced before:
- a change to users takes the app's advisory lock shared, then the users' profile rows in
  user id order (the upsert that writes them), so concurrent batches cannot deadlock;
- a change to segment rules takes the app's lock exclusive: no user change of the app runs
  while memberships are recomputed for the new rules.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.protoconv import attribute_python
from services.segmentation.catalog import Catalog, SegmentDef
from services.segmentation.profile import Counter, Profile

SEGMENTS_CHANNEL = "nudge_segments"
USERS_CHANNEL = "nudge_segmentation_users"
OUTBOX_CHANNEL = "nudge_segmentation_outbox"
_NOTIFY_BYTES = 7000  # NOTIFY payloads stop at 8000 bytes


# ---------------------------------------------------------------- locks and catalogs


async def lock_app(conn: asyncpg.Connection, app_id: str, exclusive: bool = False) -> int:
    """Takes the app's lock for this transaction; returns its segment rules' version, read
    after the lock so a change that committed while we waited is seen."""
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(f"SELECT {function}(hashtextextended('segmentation:' || $1, 0))", app_id)
    return await conn.fetchval("SELECT coalesce((SELECT version FROM catalogs WHERE app_id = $1), 0)", app_id)


def _segment(row: asyncpg.Record) -> SegmentDef:
    return SegmentDef(row["id"], row["seq"], row["name"], row["description"], pb.Rule.FromString(row["rule"]),
                      row["version"], row["created_at"], row["updated_at"])


async def load_catalog(conn: asyncpg.Connection | asyncpg.Pool, app_id: str) -> Catalog:
    rows = await conn.fetch(
        """SELECT coalesce((SELECT version FROM catalogs WHERE app_id = $1), 0) AS catalog_version, s.*
           FROM (SELECT 1) one LEFT JOIN segments s ON s.app_id = $1 ORDER BY s.id""", app_id)
    segments = {r["id"]: _segment(r) for r in rows if r["id"] is not None}
    return Catalog(app_id, rows[0]["catalog_version"], segments)


# ---------------------------------------------------------------- applying events


async def new_ids(conn: asyncpg.Connection, table: str, column: str, app_id: str, ids: list[str]) -> set[str]:
    """Records ids as applied; returns those that were not yet (deduplication)."""
    rows = await conn.fetch(
        f"INSERT INTO {table} (app_id, {column}) SELECT $1, unnest($2::text[])"
        f" ON CONFLICT DO NOTHING RETURNING {column}", app_id, ids)
    return {r[column] for r in rows}


@dataclass
class Activity:
    """What a batch of events says about one user's profile."""

    first_seen: datetime
    last_seen: datetime
    platforms: set[int]
    app_version: str = ""
    app_version_parts: list[int] | None = None
    app_version_at: datetime | None = None


def _int_array(values: Iterable[int] | None) -> str | None:
    return None if values is None else "{" + ",".join(str(v) for v in values) + "}"


# A user's stored memberships, looked up by primary key. As a plain join, a batch of a few
# hundred users against a table of some 100k rows is planned as a hash join that scans every
# membership; LIMIT 1 (the key makes it at most one row anyway) keeps each a lookup.
_MEMBERSHIP_OF = """LEFT JOIN LATERAL (
        SELECT m.user_id, m.segments, m.valid_until, m.version FROM memberships m
        WHERE m.app_id = {alias}.app_id AND m.user_id = {alias}.user_id LIMIT 1) m ON true"""

_WITH_MEMBERSHIPS = "SELECT up.*, m.segments, m.valid_until, m.version FROM up " + _MEMBERSHIP_OF.format(alias="up")


async def upsert_activity(conn: asyncpg.Connection, app_id: str, users: dict[str, Activity]) -> list[asyncpg.Record]:
    """Creates or updates the users' profiles from events, locking them in user id order;
    returns the rows after the update, with the stored memberships and `context_changed`
    (needs PostgreSQL 18's RETURNING old/new)."""
    ids = sorted(users)
    a = [users[u] for u in ids]
    return await conn.fetch(
        """WITH up AS (
           INSERT INTO profiles AS p (app_id, user_id, first_seen, last_seen, platforms, app_version,
                                      app_version_parts, app_version_at)
           SELECT $1, u, f, l, pl::smallint[], v, vp::integer[], va
           FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
                       $8::timestamptz[]) AS t(u, f, l, pl, v, vp, va)
           ORDER BY u
           ON CONFLICT (app_id, user_id) DO UPDATE SET
               first_seen = least(p.first_seen, excluded.first_seen),
               last_seen = greatest(p.last_seen, excluded.last_seen),
               platforms = CASE WHEN excluded.platforms <@ p.platforms THEN p.platforms
                           ELSE ARRAY(SELECT DISTINCT x FROM unnest(p.platforms || excluded.platforms) x ORDER BY 1)
                           END,
               app_version = CASE WHEN excluded.app_version_at >= coalesce(p.app_version_at, '-infinity')
                                  THEN excluded.app_version ELSE p.app_version END,
               app_version_parts = CASE WHEN excluded.app_version_at >= coalesce(p.app_version_at, '-infinity')
                                        THEN excluded.app_version_parts ELSE p.app_version_parts END,
               app_version_at = greatest(p.app_version_at, excluded.app_version_at),
               updated_at = now()
           -- Created now, or what decision keeps of a profile (platforms, app version) changed?
           RETURNING new.*, old.user_id IS NULL AS created,
                     (old.platforms IS DISTINCT FROM new.platforms
                      OR old.app_version IS DISTINCT FROM new.app_version) AS context_changed)
           """ + _WITH_MEMBERSHIPS,
        app_id, ids, [x.first_seen for x in a], [x.last_seen for x in a],
        [_int_array(sorted(x.platforms)) for x in a], [x.app_version for x in a],
        [_int_array(x.app_version_parts) for x in a], [x.app_version_at for x in a],
    )


async def add_counts(conn: asyncpg.Connection, app_id: str,
                     days: dict[tuple[str, str, date], int],
                     totals: dict[tuple[str, str], list]) -> None:
    """Adds to per-day counts ((user, key, day) -> n) and totals ((user, key) -> [n, first, last])."""
    day_keys = sorted(days)
    await conn.execute(
        """INSERT INTO event_days AS d (app_id, user_id, key, day, count)
           SELECT $1, u, k, dy, n FROM unnest($2::text[], $3::text[], $4::date[], $5::integer[]) AS t(u, k, dy, n)
           ORDER BY u, k, dy
           ON CONFLICT (app_id, user_id, key, day) DO UPDATE SET count = d.count + excluded.count""",
        app_id, [k[0] for k in day_keys], [k[1] for k in day_keys], [k[2] for k in day_keys],
        [days[k] for k in day_keys])
    total_keys = sorted(totals)
    await conn.execute(
        """INSERT INTO event_totals AS t (app_id, user_id, key, count, first_at, last_at)
           SELECT $1, u, k, n, f, l FROM unnest($2::text[], $3::text[], $4::bigint[], $5::timestamptz[],
                                                $6::timestamptz[]) AS x(u, k, n, f, l)
           ORDER BY u, k
           ON CONFLICT (app_id, user_id, key) DO UPDATE SET
               count = t.count + excluded.count,
               first_at = least(t.first_at, excluded.first_at),
               last_at = greatest(t.last_at, excluded.last_at)""",
        app_id, [k[0] for k in total_keys], [k[1] for k in total_keys],
        [totals[k][0] for k in total_keys], [totals[k][1] for k in total_keys], [totals[k][2] for k in total_keys])


async def add_recent_events(conn: asyncpg.Connection, app_id: str,
                            rows: list[tuple[str, str, datetime, dict[str, Any]]]) -> None:
    if not rows:
        return
    await conn.execute(
        """INSERT INTO recent_events (app_id, user_id, name, occurred_at, properties)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::jsonb[])""",
        app_id, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [json.dumps(r[3]) for r in rows])


# ---------------------------------------------------------------- applying profile updates


@dataclass
class AttributeChange:
    set: dict[str, dict[str, Any]]
    unset: set[str]
    time_zone: str = ""
    locale: str = ""


async def upsert_attributes(conn: asyncpg.Connection, app_id: str,
                            users: dict[str, AttributeChange]) -> list[asyncpg.Record]:
    """Applies attribute changes (set and unset never share a name), locking the users in
    user id order; returns the rows after the change, with the stored memberships."""
    ids = sorted(users)
    changes = [users[u] for u in ids]
    await conn.execute(
        """INSERT INTO profiles AS p (app_id, user_id, attributes, time_zone, locale)
           SELECT $1, u, s, tz, loc FROM unnest($2::text[], $3::jsonb[], $4::text[], $5::text[]) AS t(u, s, tz, loc)
           ORDER BY u
           ON CONFLICT (app_id, user_id) DO UPDATE SET
               attributes = p.attributes || excluded.attributes,
               time_zone = coalesce(nullif(excluded.time_zone, ''), p.time_zone),
               locale = coalesce(nullif(excluded.locale, ''), p.locale),
               updated_at = now()""",
        app_id, ids, [json.dumps(c.set) for c in changes], [c.time_zone for c in changes],
        [c.locale for c in changes])
    unsetting = [(u, c) for u, c in zip(ids, changes) if c.unset]
    if unsetting:
        # The rows are locked by the upsert above, so this second statement cannot deadlock.
        await conn.execute(
            """UPDATE profiles p SET attributes = p.attributes - ARRAY(SELECT jsonb_array_elements_text(t.x))
               FROM unnest($2::text[], $3::jsonb[]) AS t(u, x)
               WHERE p.app_id = $1 AND p.user_id = t.u""",
            app_id, [u for u, _ in unsetting], [json.dumps(sorted(c.unset)) for _, c in unsetting])
    return await conn.fetch(
        """WITH up AS (SELECT * FROM profiles WHERE app_id = $1 AND user_id = any($2::text[])) """
        + _WITH_MEMBERSHIPS, app_id, ids)


# ---------------------------------------------------------------- reading users


async def load_counters(conn: asyncpg.Connection, app_id: str, users: Sequence[str], keys: Sequence[str],
                        day_floor: date) -> dict[str, dict[str, Counter]]:
    """The counters the rules read, for each user: totals, and day counts from day_floor."""
    if not keys or not users:
        return {}
    rows = await conn.fetch(
        """SELECT user_id, key, count, first_at, last_at, NULL::date AS day FROM event_totals
           WHERE app_id = $1 AND user_id = any($2::text[]) AND key = any($3::text[])
           UNION ALL
           SELECT user_id, key, count, NULL, NULL, day FROM event_days
           WHERE app_id = $1 AND user_id = any($2::text[]) AND key = any($3::text[]) AND day >= $4""",
        app_id, list(users), list(keys), day_floor)
    totals: dict[tuple[str, str], asyncpg.Record] = {}
    days: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
    for r in rows:
        if r["day"] is None:
            totals[(r["user_id"], r["key"])] = r
        else:
            days[(r["user_id"], r["key"])][r["day"]] = r["count"]
    out: dict[str, dict[str, Counter]] = defaultdict(dict)
    for (user, key), t in totals.items():
        out[user][key] = Counter(t["count"], t["first_at"], t["last_at"], days.get((user, key), {}))
    return out


def profile_of(row: asyncpg.Record | None, user_id: str, counters: dict[str, Counter] | None = None) -> Profile:
    profile = Profile(user_id=user_id, counters=counters or {})
    if row is None:
        return profile
    profile.known = True
    stored = json.loads(row["attributes"])
    profile.stored_attributes = stored
    profile.attributes = {k: attribute_python(v) for k, v in stored.items()}
    profile.time_zone = row["time_zone"]
    profile.locale = row["locale"]
    profile.first_seen = row["first_seen"]
    profile.last_seen = row["last_seen"]
    profile.platforms = frozenset(row["platforms"])
    profile.app_version = row["app_version"]
    profile.stored = row["segments"] is not None
    profile.stored_segments = frozenset(row["segments"] or ())
    profile.stored_valid_until = row["valid_until"]
    profile.version = row["version"] or 0
    return profile


async def read_users(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, user_ids: list[str],
                     keys: Sequence[str], day_floor: date, now: datetime) -> dict[str, asyncpg.Record]:
    """Several users' profile rows with their stored memberships (NULL profile columns for
    unknown users) and the app's rules version; for users whose memberships may have changed
    by time (valid_until passed), also the counters the rules read (`counters_of`)."""
    rows = await conn.fetch(
        """SELECT coalesce((SELECT version FROM catalogs WHERE app_id = $1), 0) AS catalog_version,
                  u.wanted, p.user_id, p.attributes, p.time_zone, p.locale, p.first_seen, p.last_seen,
                  p.platforms, p.app_version, m.segments, m.valid_until, m.version,
                  CASE WHEN p.user_id IS NOT NULL AND (m.valid_until <= $5 OR m.user_id IS NULL) THEN
                      ARRAY(SELECT (t.key, t.count, t.first_at, t.last_at) FROM event_totals t
                            WHERE t.app_id = $1 AND t.user_id = u.wanted AND t.key = any($3::text[])) END
                      AS counter_totals,
                  CASE WHEN p.user_id IS NOT NULL AND (m.valid_until <= $5 OR m.user_id IS NULL) THEN
                      ARRAY(SELECT (d.key, d.day, d.count) FROM event_days d
                            WHERE d.app_id = $1 AND d.user_id = u.wanted AND d.key = any($3::text[])
                              AND d.day >= $4) END
                      AS counter_days
           FROM unnest($2::text[]) AS u(wanted)
           LEFT JOIN LATERAL (SELECT * FROM profiles p WHERE p.app_id = $1 AND p.user_id = u.wanted LIMIT 1) p ON true
           """ + _MEMBERSHIP_OF.format(alias="p"),
        app_id, user_ids, list(keys), day_floor, now)
    return {r["wanted"]: r for r in rows}


def counters_of(row: asyncpg.Record) -> dict[str, Counter]:
    days: dict[str, dict[date, int]] = defaultdict(dict)
    for key, day, count in row["counter_days"] or ():
        days[key][day] = count
    return {key: Counter(n, first, last, days.get(key, {})) for key, n, first, last in row["counter_totals"] or ()}


async def lock_users(conn: asyncpg.Connection, app_id: str, users: Sequence[str],
                     due_before: datetime | None = None) -> list[asyncpg.Record]:
    """Locks the users' profile rows in user id order and reads them with their stored
    memberships; with due_before, only users still due then, skipping rows another replica
    holds."""
    if due_before is None:
        return await conn.fetch(
            """SELECT p.*, m.segments, m.valid_until, m.version FROM profiles p """ + _MEMBERSHIP_OF.format(alias="p")
            + """ WHERE p.app_id = $1 AND p.user_id = any($2::text[]) ORDER BY p.user_id FOR UPDATE OF p""",
            app_id, list(users))
    return await conn.fetch(
        """SELECT p.*, m.segments, m.valid_until, m.version FROM profiles p
           JOIN memberships m ON m.app_id = p.app_id AND m.user_id = p.user_id
           WHERE p.app_id = $1 AND p.user_id = any($2::text[]) AND m.valid_until <= $3
           ORDER BY p.user_id FOR UPDATE OF p SKIP LOCKED""", app_id, list(users), due_before)


async def due_users(pool: asyncpg.Pool, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT app_id, user_id FROM memberships WHERE valid_until <= $1 ORDER BY valid_until LIMIT $2",
        now, limit)


async def save_memberships(conn: asyncpg.Connection, app_id: str,
                           rows: list[tuple[str, frozenset[int], datetime | None]]) -> None:
    """Stores each user's memberships and valid_until."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO memberships AS m (app_id, user_id, segments, valid_until)
           SELECT $1, u, s::integer[], v FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS t(u, s, v)
           ORDER BY u
           ON CONFLICT (app_id, user_id) DO UPDATE SET segments = excluded.segments,
               valid_until = excluded.valid_until, version = m.version + 1""",
        app_id, [r[0] for r in rows], [_int_array(sorted(r[1])) for r in rows], [r[2] for r in rows])


# ---------------------------------------------------------------- outbox and notifications


def new_change_id() -> str:
    return f"chg_{uuid.uuid4().hex}"


async def queue(conn: asyncpg.Connection, rows: list[tuple[int, str, str, str, bytes]]) -> None:
    """Outbox rows (shard, app_id, user_id, kind, payload), sent in this order per shard."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO outbox (shard, app_id, user_id, kind, payload)
           SELECT * FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::bytea[])""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [r[4] for r in rows])
    await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)


async def notify_users(conn: asyncpg.Connection, app_id: str, users: Sequence[str], origin: str) -> None:
    """Tells other replicas (at commit) to drop these users' cached contexts; `origin` is
    the sender's, which has refreshed its own cache already and skips its notification."""
    chunk: list[str] = []
    size = 0
    payloads: list[str] = []
    for u in users:
        if size + len(u) + 4 > _NOTIFY_BYTES and chunk:
            payloads.append(json.dumps({"a": app_id, "u": chunk, "o": origin}))
            chunk, size = [], 0
        chunk.append(u)
        size += len(u.encode()) + 4
    if chunk:
        payloads.append(json.dumps({"a": app_id, "u": chunk, "o": origin}))
    if payloads:
        await conn.execute("SELECT pg_notify($1, x) FROM unnest($2::text[]) x", USERS_CHANNEL, payloads)


# ---------------------------------------------------------------- erasure and upkeep


async def erase_user(conn: asyncpg.Connection, app_id: str, user_id: str) -> None:
    """Deletes everything of the user, undelivered announcements included. Announcements a
    dispatcher holds are waited for (row locks), so none of the user's is sent after this."""
    await conn.execute("DELETE FROM outbox WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM profiles WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM memberships WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM event_totals WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM event_days WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM recent_events WHERE app_id = $1 AND user_id = $2", app_id, user_id)


# ---------------------------------------------------------------- segments


async def list_segments(pool: asyncpg.Pool, app_id: str, after: str, limit: int) -> list[SegmentDef]:
    rows = await pool.fetch(
        "SELECT * FROM segments WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3", app_id, after, limit)
    return [_segment(r) for r in rows]


async def get_segment(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, segment_id: str) -> SegmentDef | None:
    row = await conn.fetchrow("SELECT * FROM segments WHERE app_id = $1 AND id = $2", app_id, segment_id)
    return _segment(row) if row else None


async def bump_catalog(conn: asyncpg.Connection, app_id: str, take_seq: bool = False) -> tuple[int, int]:
    """Raises the app's rules version (and hands out a segment number if asked)."""
    row = await conn.fetchrow(
        """INSERT INTO catalogs AS c (app_id, version, next_seq) VALUES ($1, 1, CASE WHEN $2 THEN 2 ELSE 1 END)
           ON CONFLICT (app_id) DO UPDATE SET version = c.version + 1,
               next_seq = c.next_seq + CASE WHEN $2 THEN 1 ELSE 0 END
           RETURNING version, next_seq - CASE WHEN $2 THEN 1 ELSE 0 END AS seq""", app_id, take_seq)
    return row["version"], row["seq"]


async def insert_segment(conn: asyncpg.Connection, app_id: str, seq: int, name: str, description: str,
                         rule: pb.Rule) -> SegmentDef:
    segment_id = f"seg_{uuid.uuid4().hex}"
    blob = rule.SerializeToString()
    row = await conn.fetchrow(
        """INSERT INTO segments (app_id, id, seq, name, description, rule) VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING *""", app_id, segment_id, seq, name, description, blob)
    await conn.execute("INSERT INTO segment_versions (app_id, id, version, rule) VALUES ($1, $2, 1, $3)",
                       app_id, segment_id, blob)
    return _segment(row)


async def update_segment(conn: asyncpg.Connection, app_id: str, segment_id: str, name: str, description: str,
                         rule: pb.Rule) -> SegmentDef:
    blob = rule.SerializeToString()
    row = await conn.fetchrow(
        """UPDATE segments SET name = $3, description = $4, rule = $5, version = version + 1, updated_at = now()
           WHERE app_id = $1 AND id = $2 RETURNING *""", app_id, segment_id, name, description, blob)
    await conn.execute("INSERT INTO segment_versions (app_id, id, version, rule) VALUES ($1, $2, $3, $4)",
                       app_id, segment_id, row["version"], blob)
    return _segment(row)


async def delete_segment(conn: asyncpg.Connection, app_id: str, segment: SegmentDef) -> None:
    """Deletes the segment and removes it from every user's stored memberships."""
    await conn.execute("DELETE FROM segments WHERE app_id = $1 AND id = $2", app_id, segment.id)
    await conn.execute(
        """UPDATE memberships SET segments = array_remove(segments, $2), version = version + 1
           WHERE app_id = $1 AND segments @> ARRAY[$2::integer]""", app_id, segment.seq)


async def notify_segments(conn: asyncpg.Connection, app_id: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", SEGMENTS_CHANNEL, app_id)


async def stored_response(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, request_id: str,
                          method: str) -> bytes | None:
    row = await conn.fetchrow(
        "SELECT method, response FROM segment_requests WHERE app_id = $1 AND request_id = $2", app_id, request_id)
    if row is None:
        return None
    if row["method"] != method:
        raise ValueError(f"request_id was used by {row['method']}")
    return bytes(row["response"])


async def store_response(conn: asyncpg.Connection, app_id: str, request_id: str, method: str,
                         response: bytes) -> None:
    await conn.execute(
        "INSERT INTO segment_requests (app_id, request_id, method, response) VALUES ($1, $2, $3, $4)",
        app_id, request_id, method, response)


# ---------------------------------------------------------------- whole-population queries


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


async def backfill(conn: asyncpg.Connection, key: str, raw: str, params: list[Any]) -> None:
    """Fills a newly tracked counter from the raw recent events `raw` (a FROM item `r` with
    user_id and occurred_at). params: app ($1), key ($2), then raw's."""
    await conn.execute(
        f"""INSERT INTO event_days (app_id, user_id, key, day, count)
            SELECT $1, r.user_id, $2, (r.occurred_at AT TIME ZONE 'UTC')::date, count(*)
            FROM {raw} GROUP BY 2, 4
            ON CONFLICT (app_id, user_id, key, day) DO UPDATE SET count = excluded.count""", *params)
    await conn.execute(
        f"""INSERT INTO event_totals (app_id, user_id, key, count, first_at, last_at)
            SELECT $1, r.user_id, $2, count(*), min(r.occurred_at), max(r.occurred_at)
            FROM {raw} GROUP BY 2
            ON CONFLICT (app_id, user_id, key) DO UPDATE SET count = excluded.count,
                first_at = excluded.first_at, last_at = excluded.last_at""", *params)


async def drop_counters(conn: asyncpg.Connection, app_id: str, keys: list[str]) -> None:
    if keys:
        await conn.execute("DELETE FROM event_days WHERE app_id = $1 AND key = any($2::text[])", app_id, keys)
        await conn.execute("DELETE FROM event_totals WHERE app_id = $1 AND key = any($2::text[])", app_id, keys)
