"""Segment definitions (segments, segment_versions), each app's rules version and segment
numbers (catalogs), and the app's lock. (The responses kept under request ids, segment_requests, are
nudgelib.replay's.)"""

from __future__ import annotations

import uuid

import asyncpg

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.errors import AlreadyExists
from services.segmentation.model import SegmentDef
from services.segmentation.store import SEGMENTS_CHANNEL

KEY_INDEX = "segments_key_idx"  # migration 0009
_VERSION = "coalesce((SELECT version FROM catalogs WHERE app_id = $1), 0)"


async def lock_app(conn: asyncpg.Connection, app_id: str, exclusive: bool = False) -> int:
    """Takes the app's lock for this transaction; returns its segment rules' version, read
    after the lock so a change that committed while we waited is seen."""
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(f"SELECT {function}(hashtextextended('segmentation:' || $1, 0))", app_id)
    return await rules_version(conn, app_id)


async def rules_version(conn: asyncpg.Connection | asyncpg.Pool, app_id: str) -> int:
    return await conn.fetchval(f"SELECT {_VERSION}", app_id)


def _segment(row: asyncpg.Record) -> SegmentDef:
    return SegmentDef(row["id"], row["seq"], row["name"], row["description"], pb.Rule.FromString(row["rule"]),
                      row["version"], row["created_at"], row["updated_at"], row["key"])


async def all_segments(conn: asyncpg.Connection | asyncpg.Pool, app_id: str) -> tuple[int, list[SegmentDef]]:
    """The app's rules version and every segment of it, read together."""
    rows = await conn.fetch(
        f"""SELECT {_VERSION} AS catalog_version, s.*
           FROM (SELECT 1) one LEFT JOIN segments s ON s.app_id = $1 ORDER BY s.id""", app_id)
    return rows[0]["catalog_version"], [_segment(r) for r in rows if r["id"] is not None]


async def list_segments(pool: asyncpg.Pool, app_id: str, after: str, limit: int, key: str = "") -> list[SegmentDef]:
    rows = await pool.fetch(
        "SELECT * FROM segments WHERE app_id = $1 AND id > $2 AND ($4 = '' OR key = $4) ORDER BY id LIMIT $3",
        app_id, after, limit, key)
    return [_segment(r) for r in rows]


async def segment_id_by_key(pool: asyncpg.Pool, app_id: str, key: str) -> str | None:
    return await pool.fetchval("SELECT id FROM segments WHERE app_id = $1 AND key = $2", app_id, key)


async def _write_segment(conn: asyncpg.Connection, key: str, query: str, *args) -> asyncpg.Record:
    """Runs the insert or update of a segment row; a key another segment holds is ALREADY_EXISTS."""
    try:
        return await conn.fetchrow(query, *args)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != KEY_INDEX:
            raise
        raise AlreadyExists(f"key: {key!r} is the key of another segment of this app") from None


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
                         rule: pb.Rule, key: str = "") -> SegmentDef:
    segment_id = f"seg_{uuid.uuid4().hex}"
    blob = rule.SerializeToString()
    row = await _write_segment(
        conn, key, """INSERT INTO segments (app_id, id, seq, name, description, rule, key)
                      VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        app_id, segment_id, seq, name, description, blob, key)
    await conn.execute("INSERT INTO segment_versions (app_id, id, version, rule) VALUES ($1, $2, 1, $3)",
                       app_id, segment_id, blob)
    return _segment(row)


async def update_segment(conn: asyncpg.Connection, app_id: str, segment_id: str, name: str, description: str,
                         rule: pb.Rule, key: str = "") -> SegmentDef:
    blob = rule.SerializeToString()
    row = await _write_segment(
        conn, key, """UPDATE segments SET name = $3, description = $4, rule = $5, key = $6, version = version + 1,
                             updated_at = now()
                      WHERE app_id = $1 AND id = $2 RETURNING *""", app_id, segment_id, name, description, blob, key)
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


async def existing_segment_ids(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, ids: list[str]) -> set[str]:
    """Which of `ids` are segments of the app: one query for the batch."""
    rows = await conn.fetch("SELECT id FROM segments WHERE app_id = $1 AND id = any($2::text[])", app_id, ids)
    return {r["id"] for r in rows}
