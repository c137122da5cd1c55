"""SQL for ingestion's own schema: events, dedupe keys, the outbox, partitions, erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from nudgelib.retention import delete_before
from services.ingestion import framing, partitions

# Delivery takes events for conversion attribution.
EVENT_CONSUMERS = ("segmentation", "decision", "delivery")
PROFILE_CONSUMERS = ("segmentation",)
CONSUMERS = ("segmentation", "decision", "delivery")

# Advisory lock space of this service (two-int form: the first int names what is locked).
# Lane locks are (_LANE_LOCK + consumer index, lane); maintenance is (_MAINTENANCE_LOCK, 0).
_LANE_LOCK = 0x494E0000
_MAINTENANCE_LOCK = 0x494E00FF


def lane_lock_class(consumer: str) -> int:
    return _LANE_LOCK + CONSUMERS.index(consumer)


@dataclass(frozen=True)
class EventRows:
    """A batch of validated events as column arrays, in request order. Kept to the columns
    the statement needs: encoding array elements is the costly part of sending a batch."""

    event_ids: list[str]
    user_ids: list[str]
    names: list[str]
    occurred_us: list[int]  # microseconds since the Unix epoch
    payloads: list[bytes]  # each the serialized nudge.common.v1.Event
    lanes: list[int]


# One statement, one commit: keys that are new win the ON CONFLICT race (inserted in key
# order, so concurrent batches sharing keys cannot deadlock), their events are stored in the
# day's partition, and one outbox row per lane and consumer carries the lane's new events
# already framed for the consumer call. No NOTIFY here: PostgreSQL serializes the commits of
# notifying transactions (WAL flush included) behind one lock, which would undo group commit;
# the replica that commits wakes its own dispatch loops, the others poll.
_INSERT_EVENTS = """
WITH input AS (
    SELECT md5($1 || E'\\x1f' || event_id)::uuid AS key, t.*
    FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bytea[], $7::smallint[])
        WITH ORDINALITY AS t(event_id, user_id, name, occurred_us, payload, lane, ord)
), fresh AS (
    INSERT INTO event_keys (key, received_at)
    SELECT key, $8 FROM input ORDER BY key
    ON CONFLICT DO NOTHING
    RETURNING key
), kept AS (
    SELECT input.* FROM input JOIN fresh USING (key)
), stored AS (
    INSERT INTO events (app_id, event_id, user_id, name, occurred_at, received_at, payload)
    SELECT $1, event_id, user_id, name, 'epoch'::timestamptz + occurred_us * interval '1 microsecond',
           $8, payload
    FROM kept
), queued AS (
    INSERT INTO outbox (consumer, lane, app_id, kind, items, user_ids, payload)
    SELECT c.consumer, g.lane, $1, 'event', g.items, g.user_ids, g.payload
    FROM (SELECT lane, count(*)::int AS items, array_agg(user_id ORDER BY ord) AS user_ids,
                 string_agg(pb_item_header(length(payload)) || payload, ''::bytea ORDER BY ord) AS payload
          FROM kept GROUP BY lane) g
    CROSS JOIN unnest($9::text[]) AS c(consumer)
)
SELECT count(*) AS stored FROM fresh
"""


async def insert_events(pool: asyncpg.Pool, app_id: str, rows: EventRows, received_at: datetime) -> int:
    """Stores the batch's new events and queues them for every consumer, in one commit.

    Events whose key is already known (within the dedupe retention) are skipped. Returns how
    many were new.
    """
    if not rows.event_ids:
        return 0
    row = await pool.fetchrow(
        _INSERT_EVENTS, app_id, rows.event_ids, rows.user_ids, rows.names, rows.occurred_us,
        rows.payloads, rows.lanes, received_at, list(EVENT_CONSUMERS),
    )
    return int(row["stored"])


async def queue_profile_update(pool: asyncpg.Pool, app_id: str, user_id: str, lane: int, framed: bytes) -> None:
    await pool.execute(
        """INSERT INTO outbox (consumer, lane, app_id, kind, items, user_ids, payload)
           SELECT c, $2, $1, 'profile', 1, ARRAY[$3], $4 FROM unnest($5::text[]) AS c""",
        app_id, lane, user_id, framed, list(PROFILE_CONSUMERS),
    )


# ---------------------------------------------------------------- outbox dispatch

# Lanes are claimed with transaction-level advisory locks: a lane is drained by one loop at a
# time across every replica, and released at commit (or when a crashed replica's connection
# goes). The rows are read by a second statement, whose snapshot is taken after the locks
# are held: read in the same statement, they could come from a snapshot older than the
# commit of the loop that held the lane just before, and be forwarded a second time.
# Only lanes that hold rows are locked (OFFSET 0 keeps that test before the lock): a loop
# woken for a new row must not spend its claim on empty lanes and leave that row's lane to
# the next poll.
_CLAIM_LANES = """
SELECT coalesce(array_agg(l), '{}') FROM (
    SELECT l FROM (
        SELECT l FROM unnest($1::int[]) WITH ORDINALITY AS u(l, n)
        WHERE EXISTS (SELECT 1 FROM outbox WHERE consumer = $4 AND lane = u.l)
        ORDER BY n OFFSET 0
    ) AS busy WHERE pg_try_advisory_xact_lock($2, l) LIMIT $3
) AS locked
"""

# The oldest rows of each claimed lane (index (consumer, lane, id), at most $3 rows per
# lane), of which about $4 items are kept in id order. Order only matters within a lane, and
# what is kept of each lane is a prefix of it.
_READ_LANES = """
WITH head AS (
    SELECT c.id, c.items, sum(c.items) OVER (ORDER BY c.id) AS upto
    FROM unnest($2::int[]) AS lanes(l) CROSS JOIN LATERAL (
        SELECT id, items FROM outbox WHERE consumer = $1 AND lane = lanes.l ORDER BY id LIMIT $3
    ) AS c
)
SELECT o.id, o.lane, o.app_id, o.kind, o.items, o.payload
FROM head JOIN outbox o ON o.consumer = $1 AND o.id = head.id
WHERE head.upto - head.items < $4
ORDER BY o.id
"""


# The same two statements, skipping the rows of apps held back after failures
# (nudgelib.isolation): those rows stay at the head of their lanes, unread, and the rows of
# other apps behind them flow. Only used while some app is held, so the usual claim reads no
# app ids.
_CLAIM_LANES_EXCEPT = _CLAIM_LANES.replace(
    "WHERE consumer = $4 AND lane = u.l)", "WHERE consumer = $4 AND lane = u.l AND NOT (app_id = any($5::text[])))")
_READ_LANES_EXCEPT = _READ_LANES.replace(
    "WHERE consumer = $1 AND lane = lanes.l ORDER BY id",
    "WHERE consumer = $1 AND lane = lanes.l AND NOT (app_id = any($5::text[])) ORDER BY id")


async def claim(conn: asyncpg.Connection, consumer: str, lanes: Sequence[int], max_lanes: int,
                max_items: int, held: Sequence[str] = ()) -> list[asyncpg.Record]:
    """Within the caller's transaction: the next rows of the lanes this loop could lock,
    leaving out the rows of the apps `held`."""
    extra = [list(held)] if held else []
    locked = await conn.fetchval(_CLAIM_LANES_EXCEPT if held else _CLAIM_LANES, list(lanes),
                                 lane_lock_class(consumer), max_lanes, consumer, *extra)
    if not locked:
        return []
    # Enough rows per lane for the claimed lanes together to fill a call when each holds
    # one-item rows; batch traffic (many items per row) fills it from far fewer.
    per_lane = max(1, -(-max_items // len(locked)))
    return await conn.fetch(_READ_LANES_EXCEPT if held else _READ_LANES, consumer, locked, per_lane, max_items,
                            *extra)


async def users_of(conn: asyncpg.Connection, consumer: str, ids: list[int]) -> dict[int, list[str]]:
    """The user of each item of these rows, in item order (read only when a call failed)."""
    rows = await conn.fetch("SELECT id, user_ids FROM outbox WHERE consumer = $1 AND id = any($2::bigint[])",
                            consumer, ids)
    return {r["id"]: list(r["user_ids"]) for r in rows}


async def delete_rows(conn: asyncpg.Connection, consumer: str, ids: list[int]) -> None:
    await conn.execute("DELETE FROM outbox WHERE consumer = $1 AND id = any($2::bigint[])", consumer, ids)


@dataclass(frozen=True)
class Remaining:
    """What is left of a row once some of its items were taken or set aside."""

    id: int
    payload: bytes
    user_ids: list[str]


@dataclass(frozen=True)
class DeadItem:
    """One item set aside: its row, its framed bytes and its user, and the consumer's error."""

    row_id: int
    payload: bytes
    user_id: str
    error: str


async def settle_split(conn: asyncpg.Connection, consumer: str, remaining: list[Remaining],
                       dead: list[DeadItem], attempts: int) -> None:
    """Within the dispatch transaction: rows whose call was split keep only the items still
    to send (a row left with none is deleted by the caller), and the items set aside go to
    `dead_letters` with their error, copied from their row (lane, app, kind, queued time)."""
    if dead:
        await conn.execute(
            """INSERT INTO dead_letters (consumer, lane, app_id, kind, items, user_ids, payload, created_at,
                                         error, attempts)
               SELECT $1, o.lane, o.app_id, o.kind, 1, ARRAY[d.user_id], d.payload, o.created_at, d.error, $6
               FROM unnest($2::bigint[], $3::bytea[], $4::text[], $5::text[]) AS d(id, payload, user_id, error)
               JOIN outbox o ON o.consumer = $1 AND o.id = d.id""",
            consumer, [d.row_id for d in dead], [d.payload for d in dead], [d.user_id for d in dead],
            [d.error for d in dead], attempts)
    if remaining:
        await conn.execute(
            """UPDATE outbox o SET payload = t.payload, items = cardinality(t.users),
                                  user_ids = t.users
               FROM (SELECT id, payload, string_to_array(users, E'\\x1f') AS users
                     FROM unnest($2::bigint[], $3::bytea[], $4::text[]) AS u(id, payload, users)) AS t
               WHERE o.consumer = $1 AND o.id = t.id""",
            consumer, [r.id for r in remaining], [r.payload for r in remaining],
            ["\x1f".join(r.user_ids) for r in remaining])


async def backlog(pool: asyncpg.Pool) -> tuple[dict[str, int], dict[str, float]]:
    """Per consumer: items waiting, and the age in seconds of the oldest waiting row. Read
    from the indexes only (the sum from (consumer, lane, id) INCLUDE (items), the oldest
    row from the primary key), so a large backlog does not mean a large scan."""
    rows = await pool.fetch(
        """SELECT c AS consumer,
                  (SELECT coalesce(sum(items), 0) FROM outbox WHERE consumer = c)::bigint AS items,
                  coalesce((SELECT extract(epoch FROM now() - created_at) FROM outbox
                            WHERE consumer = c ORDER BY id LIMIT 1), 0)::float8 AS age
           FROM unnest($1::text[]) AS c""",
        list(CONSUMERS))
    return ({r["consumer"]: r["items"] for r in rows}, {r["consumer"]: max(0.0, r["age"]) for r in rows})


async def backlog_by_app(pool: asyncpg.Pool) -> dict[str, dict[str, tuple[int, float]]]:
    """Per consumer and app: items waiting and the age of the oldest. A scan of the outbox,
    read only while a total passes a backpressure bound (pressure.py)."""
    rows = await pool.fetch(
        """SELECT consumer, app_id, sum(items)::bigint AS items,
                  greatest(0, extract(epoch FROM now() - min(created_at)))::float8 AS age
           FROM outbox WHERE consumer = any($1::text[]) GROUP BY consumer, app_id""",
        list(CONSUMERS))
    out: dict[str, dict[str, tuple[int, float]]] = {c: {} for c in CONSUMERS}
    for r in rows:
        out[r["consumer"]][r["app_id"]] = (r["items"], r["age"])
    return out


# ---------------------------------------------------------------- erasure


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str, lane: int) -> None:
    """Deletes the user's events and removes the user's items from undelivered outbox rows.

    The user's lane is locked for every consumer first (waiting for a dispatch in progress to
    finish), so once this commits nothing of the user can still be forwarded: an erasure
    elsewhere that follows cannot be undone by a late outbox row.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM events WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("SELECT pg_advisory_xact_lock(k, $1) FROM unnest($2::int[]) AS k",
                           lane, [lane_lock_class(c) for c in CONSUMERS])
        for table in ("outbox", "dead_letters"):
            await _erase_items(conn, table, app_id, user_id, lane)


async def _erase_items(conn: asyncpg.Connection, table: str, app_id: str, user_id: str, lane: int) -> None:
    """Removes one user's items from the rows of `table` (outbox or dead_letters) holding them."""
    rows = await conn.fetch(
        f"SELECT consumer, id, kind, payload FROM {table}"
        " WHERE consumer = any($4::text[]) AND lane = $1 AND app_id = $2 AND $3 = any(user_ids) FOR UPDATE",
        lane, app_id, user_id, list(CONSUMERS))
    emptied: list[tuple[str, int]] = []
    rewritten: list[tuple[str, int, bytes, int]] = []
    for r in rows:
        payload, remaining = framing.without_user(r["kind"], r["payload"], user_id)
        if remaining == 0:
            emptied.append((r["consumer"], r["id"]))
        else:
            rewritten.append((r["consumer"], r["id"], payload, remaining))
    if emptied:
        await conn.execute(
            f"DELETE FROM {table} o USING unnest($1::text[], $2::bigint[]) AS t(consumer, id)"
            " WHERE o.consumer = t.consumer AND o.id = t.id",
            [c for c, _ in emptied], [i for _, i in emptied])
    if rewritten:
        await conn.execute(
            f"""UPDATE {table} o SET payload = t.payload, items = t.items,
                                  user_ids = array_remove(o.user_ids, $1)
               FROM unnest($2::text[], $3::bigint[], $4::bytea[], $5::int[]) AS t(consumer, id, payload, items)
               WHERE o.consumer = t.consumer AND o.id = t.id""",
            user_id, [r[0] for r in rewritten], [r[1] for r in rewritten],
            [r[2] for r in rewritten], [r[3] for r in rewritten])


# ---------------------------------------------------------------- partitions and retention


async def existing_partitions(conn: asyncpg.Connection) -> list[date]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass")
    return [d for d in (partitions.partition_day(r["relname"]) for r in rows) if d is not None]


async def maintain(pool: asyncpg.Pool, now: datetime, ahead_days: int, retention_days: int,
                   dedupe_retention_days: int, wait: bool = False, sweep: bool = True,
                   sweep_batch: int = 50_000) -> partitions.Plan | None:
    """Creates the coming days' partitions, drops expired ones and (if `sweep`) forgets
    expired dedupe keys. One replica at a time does it; returns what was planned, or None if
    another replica was doing it (unless `wait`, as at start-up, when it waits its turn)."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            if wait:
                await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", _MAINTENANCE_LOCK)
            elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, 0)", _MAINTENANCE_LOCK):
                return None
            todo = partitions.plan(await existing_partitions(conn), now, ahead_days, retention_days)
            # Identifiers and bounds cannot be parameters: names come from dates, bounds are
            # timestamps we format. One script, one round trip.
            script = [
                f"CREATE TABLE IF NOT EXISTS {partitions.partition_name(day)} PARTITION OF events"
                f" FOR VALUES FROM ('{partitions.day_start(day).isoformat()}')"
                f" TO ('{partitions.day_start(day + timedelta(days=1)).isoformat()}')"
                for day in todo.create
            ] + [f"DROP TABLE IF EXISTS {partitions.partition_name(day)}" for day in todo.drop]
            if script:
                # Dropping a partition locks the parent table; never queue behind (and hold
                # up) inserts for long: a later run tries again.
                await conn.execute("SET LOCAL lock_timeout = '2s'; " + "; ".join(script))
        if sweep:
            # Expired keys go in bounded batches, each its own short transaction.
            cutoff = partitions.dedupe_cutoff(now, dedupe_retention_days)
            await delete_before(conn, "event_keys", "received_at", cutoff, sweep_batch)
    return todo
