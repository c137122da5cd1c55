"""Stored memberships (memberships) and the outbox that announces their changes to
decision, with the notifications that wake the outbox and other replicas' caches."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from nudgelib import user_notices
from nudgelib.eventlog import traces
from nudgelib.eventlog.horizon import enter_gate, position_sql
from services.segmentation import announcements
from services.segmentation.store import OUTBOX_CHANNEL, USERS_CHANNEL, int_array

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
        app_id, [r[0] for r in rows], [int_array(sorted(r[1])) for r in rows], [r[2] for r in rows])


# ---------------------------------------------------------------- outbox and notifications


# A change id names a send that a segment entry starts (decision dedupes on it), so it is
# unique across replicas and restarts: a random prefix per process, then a count. A uuid4 per
# change cost a system call for each announced user.
_CHANGE_PREFIX = f"chg_{secrets.token_hex(8)}_"
_change_seq = itertools.count(1)


def new_change_id() -> str:
    return f"{_CHANGE_PREFIX}{next(_change_seq):x}"


async def begin_writing(conn: asyncpg.Connection) -> None:
    """First thing in a transaction that may queue announcements (before it writes anything):
    the log's readers then wait for it (nudgelib.eventlog.horizon)."""
    await enter_gate(conn, announcements.LOG.gate)


async def queue(conn: asyncpg.Connection, rows: list[tuple[int, str, str, int, bytes]]) -> None:
    """Announcements (lane, app_id, user_id, kind, payload), sent in this order per lane. The
    transaction must have begun with `begin_writing`."""
    if not rows:
        return
    await conn.execute(
        f"""INSERT INTO outbox (lane, position, app_id, user_id, kind, payload)
            SELECT t.lane, {position_sql("t.n")}, t.app_id, t.user_id, t.kind, t.payload
            FROM unnest($1::smallint[], $2::text[], $3::text[], $4::smallint[], $5::bytea[])
                WITH ORDINALITY AS t(lane, app_id, user_id, kind, payload, n)""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [r[4] for r in rows])
    await traces.record(conn, announcements.LOG.traces)
    await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)


async def notify_users(conn: asyncpg.Connection, app_id: str, users: Sequence[str], origin: str) -> None:
    """Tells other replicas (at commit) to drop these users' cached contexts; `origin` is
    the sender's, which has refreshed its own cache already and skips its notification."""
    await user_notices.notify(conn, USERS_CHANNEL, app_id, users, origin)
