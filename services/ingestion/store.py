"""SQL for ingestion's own schema: events, the outbox, user erasure."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg
from google.protobuf import json_format

from nudge.common.v1 import common_pb2

OUTBOX_CHANNEL = "nudge_outbox"
EVENT_CONSUMERS = ("segmentation", "decision")
PROFILE_CONSUMERS = ("segmentation",)

_INSERT_EVENTS = f"""
WITH input AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[],
                         $7::smallint[], $8::text[], $9::text[], $10::bytea[])
        WITH ORDINALITY AS t(event_id, user_id, name, properties, occurred_at, platform,
                             app_version, session_id, payload, ord)
), inserted AS (
    INSERT INTO events (app_id, event_id, user_id, name, properties, occurred_at, platform,
                        app_version, session_id)
    SELECT $1, event_id, user_id, name, properties, occurred_at, platform, app_version, session_id
    FROM input
    ON CONFLICT (app_id, event_id) DO NOTHING
    RETURNING event_id
), queued AS (
    INSERT INTO outbox (app_id, consumer, kind, user_id, payload)
    SELECT $1, c.consumer, 'event', i.user_id, i.payload
    FROM input i JOIN inserted USING (event_id)
         CROSS JOIN unnest($11::text[]) AS c(consumer)
    ORDER BY i.ord, c.consumer
    RETURNING 1
), notified AS (
    SELECT pg_notify('{OUTBOX_CHANNEL}', '') WHERE EXISTS (SELECT 1 FROM inserted)
)
SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM notified) AS notified
"""


async def insert_events(
    pool: asyncpg.Pool, app_id: str, events: list[common_pb2.Event], occurred: list[datetime]
) -> int:
    """Stores the events and queues them for every consumer, in one statement and one commit.

    Events whose (app, event_id) is already stored are skipped. Returns how many were new.
    """
    if not events:
        return 0
    row = await pool.fetchrow(
        _INSERT_EVENTS,
        app_id,
        [e.event_id for e in events],
        [e.user_id for e in events],
        [e.name for e in events],
        [json.dumps(json_format.MessageToDict(e.properties)) for e in events],
        occurred,
        [int(e.platform) for e in events],
        [e.app_version for e in events],
        [e.session_id for e in events],
        [e.SerializeToString() for e in events],
        list(EVENT_CONSUMERS),
    )
    return int(row["inserted"])


async def queue_profile_update(pool: asyncpg.Pool, app_id: str, user_id: str, payload: bytes) -> None:
    await pool.execute(
        f"""WITH queued AS (
                INSERT INTO outbox (app_id, consumer, kind, user_id, payload)
                SELECT $1, c, 'profile', $2, $3 FROM unnest($4::text[]) AS c
                RETURNING 1)
            SELECT pg_notify('{OUTBOX_CHANNEL}', '') FROM (SELECT count(*) FROM queued) q""",
        app_id, user_id, payload, list(PROFILE_CONSUMERS),
    )


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str) -> None:
    """Deletes the user's events and undelivered outbox rows. Rows a dispatcher holds are
    waited for (row locks), so nothing of the user is forwarded after this returns."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM outbox WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("DELETE FROM events WHERE app_id = $1 AND user_id = $2", app_id, user_id)


async def count_user_events(pool: asyncpg.Pool, app_id: str, user_id: str) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM events WHERE app_id = $1 AND user_id = $2", app_id, user_id
    )
