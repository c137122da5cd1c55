"""SQL for segmentation's own schema: profiles, event aggregates, segments."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.protoconv import attribute_python, attribute_to_json, to_datetime
from services.segmentation.profile import DayCount, Profile

SEGMENTS_CHANNEL = "nudge_segments"


async def apply_events(pool: asyncpg.Pool, app_id: str, events: list[common_pb2.Event]) -> list[str]:
    """Folds events into aggregates and profiles, once each; returns the users touched."""
    if not events:
        return []
    async with pool.acquire() as conn, conn.transaction():
        new_ids = {
            r["event_id"]
            for r in await conn.fetch(
                "INSERT INTO applied_events (app_id, event_id) SELECT $1, unnest($2::text[])"
                " ON CONFLICT DO NOTHING RETURNING event_id",
                app_id, [e.event_id for e in events],
            )
        }
        fresh = [e for e in events if e.event_id in new_ids]
        if not fresh:
            return []
        counts: dict[tuple[str, str, object], list] = {}
        users: dict[str, list] = {}
        for e in fresh:
            at = to_datetime(e.occurred_time)
            key = (e.user_id, e.name, at.date())
            agg = counts.setdefault(key, [0, at, at])
            agg[0] += 1
            agg[1], agg[2] = min(agg[1], at), max(agg[2], at)
            u = users.setdefault(e.user_id, [at, at, set(), "", at])
            u[0], u[1] = min(u[0], at), max(u[1], at)
            if e.platform:
                u[2].add(int(e.platform))
            if e.app_version and at >= u[4]:
                u[3], u[4] = e.app_version, at
        await conn.execute(
            """INSERT INTO event_counts (app_id, user_id, name, day, count, first_at, last_at)
               SELECT $1, * FROM unnest($2::text[], $3::text[], $4::date[], $5::int[],
                                        $6::timestamptz[], $7::timestamptz[])
               ON CONFLICT (app_id, user_id, name, day) DO UPDATE SET
                   count = event_counts.count + excluded.count,
                   first_at = least(event_counts.first_at, excluded.first_at),
                   last_at = greatest(event_counts.last_at, excluded.last_at)""",
            app_id,
            [k[0] for k in counts], [k[1] for k in counts], [k[2] for k in counts],
            [v[0] for v in counts.values()], [v[1] for v in counts.values()], [v[2] for v in counts.values()],
        )
        await conn.execute(
            """INSERT INTO profiles AS p (app_id, user_id, first_seen, last_seen, platforms, app_version)
               SELECT $1, u, f, l, string_to_array(pl, ',')::smallint[], v
               FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[])
                   AS t(u, f, l, pl, v)
               ON CONFLICT (app_id, user_id) DO UPDATE SET
                   first_seen = least(p.first_seen, excluded.first_seen),
                   last_seen = greatest(p.last_seen, excluded.last_seen),
                   platforms = ARRAY(SELECT DISTINCT unnest(p.platforms || excluded.platforms) ORDER BY 1),
                   app_version = CASE
                       WHEN excluded.app_version <> ''
                            AND (p.last_seen IS NULL OR excluded.last_seen >= p.last_seen)
                       THEN excluded.app_version ELSE p.app_version END,
                   updated_at = now()""",
            app_id,
            list(users), [u[0] for u in users.values()], [u[1] for u in users.values()],
            [",".join(str(p) for p in sorted(u[2])) for u in users.values()],
            [u[3] for u in users.values()],
        )
    return list(users)


async def apply_profile_updates(
    pool: asyncpg.Pool, app_id: str, updates: list[internal_pb.ProfileUpdate]
) -> list[str]:
    """Applies Identify updates, once each, in order; returns the users touched."""
    if not updates:
        return []
    async with pool.acquire() as conn, conn.transaction():
        new_ids = {
            r["update_id"]
            for r in await conn.fetch(
                "INSERT INTO applied_updates (app_id, update_id) SELECT $1, unnest($2::text[])"
                " ON CONFLICT DO NOTHING RETURNING update_id",
                app_id, [u.update_id for u in updates],
            )
        }
        # Several updates of one user in one batch are merged first, in order, because one
        # INSERT .. ON CONFLICT cannot touch the same row twice.
        merged: dict[str, dict] = {}
        for u in updates:
            if u.update_id not in new_ids:
                continue
            m = merged.setdefault(u.user_id, {"set": {}, "unset": set(), "tz": "", "locale": ""})
            for name in u.unset_attributes:
                m["set"].pop(name, None)
                m["unset"].add(name)
            for name, value in u.attributes.items():
                m["set"][name] = attribute_to_json(value)
                m["unset"].discard(name)
            m["tz"] = u.time_zone or m["tz"]
            m["locale"] = u.locale or m["locale"]
        if not merged:
            return []
        users = list(merged)
        await conn.execute(
            """UPDATE profiles p SET attributes = p.attributes - t.unset_attrs::text[]
               FROM (SELECT u AS user_id, ARRAY(SELECT jsonb_array_elements_text(j)) AS unset_attrs
                     FROM unnest($2::text[], $3::jsonb[]) AS x(u, j)) AS t
               WHERE p.app_id = $1 AND p.user_id = t.user_id AND cardinality(t.unset_attrs) > 0""",
            app_id, users, [json.dumps(sorted(m["unset"])) for m in merged.values()],
        )
        await conn.execute(
            """INSERT INTO profiles AS p (app_id, user_id, attributes, time_zone, locale)
               SELECT $1, * FROM unnest($2::text[], $3::jsonb[], $4::text[], $5::text[])
               ON CONFLICT (app_id, user_id) DO UPDATE SET
                   attributes = p.attributes || excluded.attributes,
                   time_zone = coalesce(nullif(excluded.time_zone, ''), p.time_zone),
                   locale = coalesce(nullif(excluded.locale, ''), p.locale),
                   updated_at = now()""",
            app_id, users,
            [json.dumps(m["set"]) for m in merged.values()],
            [m["tz"] for m in merged.values()],
            [m["locale"] for m in merged.values()],
        )
    return list(merged)


def _profile(user_id: str, row: asyncpg.Record | None, counts: list[asyncpg.Record]) -> Profile:
    profile = Profile(user_id=user_id)
    if row is not None:
        profile.known = True
        profile.stored_attributes = json.loads(row["attributes"])
        profile.attributes = {k: attribute_python(v) for k, v in profile.stored_attributes.items()}
        profile.time_zone = row["time_zone"]
        profile.locale = row["locale"]
        profile.first_seen = row["first_seen"]
        profile.last_seen = row["last_seen"]
        profile.platforms = frozenset(row["platforms"])
        profile.app_version = row["app_version"]
    events: dict[str, list[DayCount]] = defaultdict(list)
    for c in counts:
        events[c["name"]].append(DayCount(c["day"], c["count"], c["first_at"], c["last_at"]))
    profile.events = dict(events)
    return profile


async def load_profile(pool: asyncpg.Pool, app_id: str, user_id: str) -> Profile:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM profiles WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        counts = await conn.fetch(
            "SELECT name, day, count, first_at, last_at FROM event_counts"
            " WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    return _profile(user_id, row, counts)


async def load_profiles_page(
    pool: asyncpg.Pool, app_id: str, after_user: str, limit: int
) -> list[Profile]:
    """A page of profiles in user id order, with their aggregates: two queries per page."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM profiles WHERE app_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3",
            app_id, after_user, limit)
        if not rows:
            return []
        counts = await conn.fetch(
            "SELECT user_id, name, day, count, first_at, last_at FROM event_counts"
            " WHERE app_id = $1 AND user_id = any($2::text[])",
            app_id, [r["user_id"] for r in rows])
    by_user: dict[str, list] = defaultdict(list)
    for c in counts:
        by_user[c["user_id"]].append(c)
    return [_profile(r["user_id"], r, by_user[r["user_id"]]) for r in rows]


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM profiles WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("DELETE FROM event_counts WHERE app_id = $1 AND user_id = $2", app_id, user_id)


# ---------------------------------------------------------------- segments


@dataclass(frozen=True)
class SegmentRow:
    id: str
    name: str
    description: str
    rule: pb.Rule
    version: int
    created_at: datetime
    updated_at: datetime


def _segment(row: asyncpg.Record) -> SegmentRow:
    return SegmentRow(row["id"], row["name"], row["description"], pb.Rule.FromString(row["rule"]),
                      row["version"], row["created_at"], row["updated_at"])


async def load_segments(pool: asyncpg.Pool, app_id: str) -> list[SegmentRow]:
    rows = await pool.fetch("SELECT * FROM segments WHERE app_id = $1 ORDER BY id", app_id)
    return [_segment(r) for r in rows]


async def get_segment(pool: asyncpg.Pool, app_id: str, segment_id: str) -> SegmentRow | None:
    row = await pool.fetchrow("SELECT * FROM segments WHERE app_id = $1 AND id = $2", app_id, segment_id)
    return _segment(row) if row else None


async def list_segments(pool: asyncpg.Pool, app_id: str, after: str, limit: int) -> list[SegmentRow]:
    rows = await pool.fetch(
        "SELECT * FROM segments WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3", app_id, after, limit)
    return [_segment(r) for r in rows]


async def create_segment(pool: asyncpg.Pool, app_id: str, name: str, description: str,
                         rule: pb.Rule) -> SegmentRow:
    segment_id = f"seg_{uuid.uuid4().hex}"
    blob = rule.SerializeToString()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO segments (app_id, id, name, description, rule) VALUES ($1, $2, $3, $4, $5) RETURNING *",
            app_id, segment_id, name, description, blob)
        await conn.execute(
            "INSERT INTO segment_versions (app_id, id, version, rule) VALUES ($1, $2, 1, $3)",
            app_id, segment_id, blob)
        await conn.execute("SELECT pg_notify($1, $2)", SEGMENTS_CHANNEL, app_id)
    return _segment(row)


async def update_segment(pool: asyncpg.Pool, app_id: str, segment_id: str, name: str,
                         description: str, rule: pb.Rule, expected_version: int) -> SegmentRow | None:
    """Saves a new version; None if the segment does not exist or is not at expected_version."""
    blob = rule.SerializeToString()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """UPDATE segments SET name = $3, description = $4, rule = $5, version = version + 1,
                   updated_at = now()
               WHERE app_id = $1 AND id = $2 AND ($6 = 0 OR version = $6) RETURNING *""",
            app_id, segment_id, name, description, blob, expected_version)
        if row is None:
            return None
        await conn.execute(
            "INSERT INTO segment_versions (app_id, id, version, rule) VALUES ($1, $2, $3, $4)",
            app_id, segment_id, row["version"], blob)
        await conn.execute("SELECT pg_notify($1, $2)", SEGMENTS_CHANNEL, app_id)
    return _segment(row)


async def delete_segment(pool: asyncpg.Pool, app_id: str, segment_id: str) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        result = await conn.execute("DELETE FROM segments WHERE app_id = $1 AND id = $2", app_id, segment_id)
        await conn.execute("SELECT pg_notify($1, $2)", SEGMENTS_CHANNEL, app_id)
    return result.endswith(" 1")
