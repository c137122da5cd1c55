"""Profiles and what is counted of each user: profiles and event counters (event_totals,
event_days). Reads of users bring their stored memberships along."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from nudgelib.eventlog.dispatcher import lock_lane
from nudgelib.protoconv import attribute_python
from services.segmentation import announcements
from services.segmentation.model import Activity, AttributeChange, Counter, Profile
from services.segmentation.store import int_array


# The users' stored memberships, joined on the key. The join alone, a batch of a few hundred
# users against a table of some 100k rows, is planned as a hash join that scans every
# membership: the batch's own ids ($1 the app, $2 the ids) bound the memberships read, so it is
# an index lookup. Not a LATERAL ... LIMIT 1 per user, which Citus refuses (docs/citus.md); the
# bound also keeps what Citus reads of memberships for a batch to the batch's users.
_MEMBERSHIP_OF = """LEFT JOIN memberships m ON m.app_id = {alias}.app_id AND m.user_id = {alias}.user_id
        AND m.app_id = $1 AND m.user_id = any($2::text[])"""

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
               -- The column's default (the transaction's time), as the proposed row has it:
               -- Citus allows only immutable functions in DO UPDATE SET (docs/citus.md).
               updated_at = excluded.updated_at
           -- Created now, or what decision keeps of a profile (platforms, app version) changed?
           RETURNING new.*, old.user_id IS NULL AS created,
                     (old.platforms IS DISTINCT FROM new.platforms
                      OR old.app_version IS DISTINCT FROM new.app_version) AS context_changed)
           """ + _WITH_MEMBERSHIPS,
        app_id, ids, [x.first_seen for x in a], [x.last_seen for x in a],
        [int_array(sorted(x.platforms)) for x in a], [x.app_version for x in a],
        [int_array(x.app_version_parts) for x in a], [x.app_version_at for x in a],
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
               updated_at = excluded.updated_at""",
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
                     keys: Sequence[str], day_floor: date,
                     now: datetime) -> tuple[int, dict[str, tuple[asyncpg.Record, dict[str, Counter] | None]]]:
    """The app's rules version, and for each user their profile row with the stored
    memberships (NULL profile columns for unknown users) and, for a known user whose
    memberships may have changed by time (valid_until passed, or none stored), the counters
    the rules read (else None). One statement; a second one for the counters only when some
    user needs them."""
    rows = await conn.fetch(
        """SELECT coalesce((SELECT version FROM catalogs WHERE app_id = $1), 0) AS catalog_version,
                  u.wanted, p.user_id, p.attributes, p.time_zone, p.locale, p.first_seen, p.last_seen,
                  p.platforms, p.app_version, m.segments, m.valid_until, m.version
           FROM unnest($2::text[]) AS u(wanted)
           LEFT JOIN (profiles p """ + _MEMBERSHIP_OF.format(alias="p") + """)
               ON p.app_id = $1 AND p.user_id = u.wanted AND p.user_id = any($2::text[])""",
        app_id, user_ids)
    version = rows[0]["catalog_version"] if rows else 0
    # No stored memberships (segments is never NULL in a stored row), or past their validity.
    due = [r["wanted"] for r in rows if r["user_id"] is not None and (
        r["segments"] is None or (r["valid_until"] is not None and r["valid_until"] <= now))]
    counters = await load_counters(conn, app_id, due, keys, day_floor) if due else {}
    due_set = set(due)
    return version, {r["wanted"]: (r, counters.get(r["wanted"], {}) if r["wanted"] in due_set else None)
                     for r in rows}


async def read_user_with_counters(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, user_id: str,
                                  keys: Sequence[str], day_floor: date) -> tuple[asyncpg.Record | None,
                                                                                 dict[str, Counter]]:
    """One user's profile row with the stored memberships (None when the user is gone), and
    the counters the rules read."""
    row = await conn.fetchrow(
        "SELECT p.*, m.segments, m.valid_until, m.version FROM profiles p " + _MEMBERSHIP_OF.format(alias="p")
        + " WHERE p.app_id = $1 AND p.user_id = any($2::text[])", app_id, [user_id])
    counters = await load_counters(conn, app_id, [user_id], keys, day_floor) if row is not None else {}
    return row, counters.get(user_id, {})


async def lock_user(conn: asyncpg.Connection, app_id: str, user_id: str) -> None:
    """Locks one user's profile row (erasure): one user, so on Citus one shard."""
    await conn.execute("SELECT 1 FROM profiles WHERE app_id = $1 AND user_id = $2 FOR UPDATE", app_id, user_id)


async def lock_due_users(conn: asyncpg.Connection, app_id: str, users: Sequence[str],
                         due_before: datetime) -> list[asyncpg.Record]:
    """Locks the users' profile rows and reads those still due at `due_before` with their
    stored memberships, in user id order (the sweeper).

    The rows are locked by an UPDATE that changes nothing, not by SELECT ... FOR UPDATE SKIP
    LOCKED: Citus refuses FOR UPDATE across shards, and a batch spans users, so shards
    (docs/citus.md). An UPDATE takes the same row locks on every shard. It waits for a writer
    of the same users (an event batch, another replica's sweep) instead of skipping them; the
    read after it, in a snapshot of its own, then sees what that writer committed, so a user
    another replica has just re-evaluated is no longer due and is left out. A deadlock with an
    event batch (which locks in user id order) is retried by the caller, as any deadlock."""
    ids = sorted(users)
    await conn.execute("UPDATE profiles p SET updated_at = p.updated_at WHERE p.app_id = $1 AND p.user_id = any($2::text[])",
                       app_id, ids)
    return await conn.fetch(
        """SELECT p.*, m.segments, m.valid_until, m.version FROM profiles p
           JOIN memberships m ON m.app_id = p.app_id AND m.user_id = p.user_id
               AND m.app_id = $1 AND m.user_id = any($2::text[])
           WHERE p.app_id = $1 AND p.user_id = any($2::text[]) AND m.valid_until <= $3
           ORDER BY p.user_id""", app_id, ids, due_before)


async def erase_user(conn: asyncpg.Connection, app_id: str, user_id: str) -> None:
    """Deletes everything of the user, undelivered announcements included. A reader sending the
    user's lane is waited for (its lane lock), so none of the user's is sent after this."""
    await lock_lane(conn, announcements.LOG, announcements.lane_of(app_id, user_id))
    await conn.execute("DELETE FROM outbox WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM dead_letters WHERE app_id = $1 AND $2 = any(user_ids)", app_id, user_id)
    await conn.execute("DELETE FROM profiles WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM memberships WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM event_totals WHERE app_id = $1 AND user_id = $2", app_id, user_id)
    await conn.execute("DELETE FROM event_days WHERE app_id = $1 AND user_id = $2", app_id, user_id)
