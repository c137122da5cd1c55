"""SQL for ingestion's own schema: the event log, dedupe keys, partitions, erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from nudgelib.eventlog import traces
from nudgelib.eventlog.dispatcher import LogSpec, lock_lane
from nudgelib.eventlog.horizon import enter_gate, position_sql
from nudgelib.eventlog.lanes import LANES
from nudgelib.retention import delete_before
from services.ingestion import partitions

# What each consumer reads of the log (nudgelib.eventlog): kinds of item, and the advisory
# lock class of its lanes. Delivery takes events for conversion attribution.
EVENT, PROFILE = 0, 1
KINDS = {EVENT: "event", PROFILE: "profile"}
CONSUMER_KINDS = {"segmentation": (EVENT, PROFILE), "decision": (EVENT,), "delivery": (EVENT,)}
CONSUMERS = tuple(CONSUMER_KINDS)

# Advisory lock space of this service (two-int form: the first int names what is locked).
# Lane claims are (_LANE_LOCK + consumer index, lane); the writers' gate is (_GATE, 0);
# maintenance is (_MAINTENANCE_LOCK, 0).
_LANE_LOCK = 0x494E0000
_GATE = 0x494E0100
_MAINTENANCE_LOCK = 0x494E00FF

LOG = LogSpec(source="ingestion", table="events", time_column="received_at", lanes=LANES, gate=(_GATE, 0),
              lock_class=_LANE_LOCK, kinds=KINDS, consumers=CONSUMERS, traces="log_traces")


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


# One statement after the gate: keys that are new win the ON CONFLICT race (inserted in key
# order, so concurrent batches sharing keys cannot deadlock), and their events are stored in
# the day's partition, each with its lane and position: that row is all a consumer reads, so
# nothing is copied per consumer. No NOTIFY here: PostgreSQL serializes the commits of
# notifying transactions (WAL flush included) behind one lock, which would undo group commit;
# the replica that commits wakes its own readers, the others poll.
_INSERT_EVENTS = f"""
WITH input AS (
    SELECT md5($1 || E'\\x1f' || event_id)::uuid AS key, t.*
    FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bytea[], $7::smallint[])
        WITH ORDINALITY AS t(event_id, user_id, name, occurred_us, payload, lane, ord)
), fresh AS (
    INSERT INTO event_keys (key, received_at)
    SELECT key, $8 FROM input ORDER BY key
    ON CONFLICT DO NOTHING
    RETURNING key
), stored AS (
    INSERT INTO events (app_id, event_id, user_id, name, occurred_at, received_at, payload, kind, lane, position)
    SELECT $1, event_id, user_id, name, 'epoch'::timestamptz + occurred_us * interval '1 microsecond',
           $8, payload, {EVENT}, lane, {position_sql("ord")}
    FROM input JOIN fresh USING (key)
)
SELECT count(*) AS stored FROM fresh
"""

# The same with tracing on: the batch's trace context ($9), once, if anything was new.
_INSERT_EVENTS_TRACED = _INSERT_EVENTS.replace("\nSELECT count(*) AS stored FROM fresh", """
, traced AS (
    INSERT INTO log_traces (xact, traceparent)
    SELECT pg_current_xact_id()::text::bigint, $9 WHERE EXISTS (SELECT 1 FROM fresh)
    ON CONFLICT (xact) DO NOTHING
)
SELECT count(*) AS stored FROM fresh""")
assert _INSERT_EVENTS_TRACED != _INSERT_EVENTS


async def insert_events(pool: asyncpg.Pool, app_id: str, rows: EventRows, received_at: datetime,
                        traceparent: str | None = None) -> int:
    """Stores the batch's new events in the log, in one commit, with the batch's trace
    context if one is given (tracing on: nudgelib.eventlog.traces).

    Events whose key is already known (within the dedupe retention) are skipped. Returns how
    many were new.
    """
    if not rows.event_ids:
        return 0
    args = (app_id, rows.event_ids, rows.user_ids, rows.names, rows.occurred_us, rows.payloads, rows.lanes,
            received_at)
    async with pool.acquire() as conn, conn.transaction():
        await enter_gate(conn, LOG.gate)
        if traceparent is None:
            return await conn.fetchval(_INSERT_EVENTS, *args)
        return await conn.fetchval(_INSERT_EVENTS_TRACED, *args, traceparent)


# An Identify is deduplicated on its update id like an event on its id (another separator
# keeps the two key spaces apart), so a retried request_id is stored, and applied, once.
_INSERT_PROFILE = f"""
WITH fresh AS (
    INSERT INTO event_keys (key, received_at) VALUES (md5($1 || E'\\x1e' || $2)::uuid, $6)
    ON CONFLICT DO NOTHING RETURNING key
)
INSERT INTO events (app_id, event_id, user_id, name, occurred_at, received_at, payload, kind, lane, position)
SELECT $1, $2, $3, '', $6, $6, $4, {PROFILE}, $5, {position_sql("1")} FROM fresh
"""


async def queue_profile_update(pool: asyncpg.Pool, app_id: str, update_id: str, user_id: str, lane: int,
                               payload: bytes, received_at: datetime, traceparent: str | None = None) -> bool:
    """Stores an Identify's profile update (a serialized ProfileUpdate) in the log, with its
    trace context if one is given; false if its update id was stored before."""
    async with pool.acquire() as conn, conn.transaction():
        await enter_gate(conn, LOG.gate)
        done = await conn.execute(_INSERT_PROFILE, app_id, update_id, user_id, payload, lane, received_at)
        stored = done != "INSERT 0 0"
        if stored and traceparent is not None:
            await conn.execute(traces.record_sql(LOG.traces, "$1"), traceparent)
    return stored


# ---------------------------------------------------------------- erasure


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str, lane: int) -> int:
    """Deletes the user's events and profile updates, and their dead letters; returns how
    many events and updates there were.

    The user's lane is locked for every consumer first (waiting for a reader on it to finish),
    so once this commits nothing of the user can still be forwarded: an erasure elsewhere that
    follows cannot be undone by a late item.
    """
    async with pool.acquire() as conn, conn.transaction():
        await lock_lane(conn, LOG, lane)
        done = await conn.execute("DELETE FROM events WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("DELETE FROM dead_letters WHERE lane = $1 AND app_id = $2 AND $3 = any(user_ids)",
                           lane, app_id, user_id)
    return int(done.rsplit(" ", 1)[1])


# ---------------------------------------------------------------- partitions and retention


async def existing_partitions(conn: asyncpg.Connection) -> list[date]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass")
    return [d for d in (partitions.partition_day(r["relname"]) for r in rows) if d is not None]


async def _unread(conn: asyncpg.Connection, partition: str) -> bool:
    """Whether a partition holds an item some consumer has still to take: above its cursor,
    or at or after where an app of its is held."""
    return await conn.fetchval(
        f"""SELECT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS k(consumer, kinds)
                           JOIN log_cursors c ON c.consumer = k.consumer
                           JOIN {partition} e ON e.lane = c.lane AND e.position > c.position
                                AND e.kind = any(k.kinds::smallint[]))
                OR EXISTS (SELECT 1 FROM log_holds h JOIN {partition} e
                           ON e.lane = h.lane AND e.app_id = h.app_id AND e.position >= h.from_position)""",
        list(CONSUMER_KINDS), [_pg_array(k) for k in CONSUMER_KINDS.values()])


def _pg_array(values) -> str:
    return "{" + ",".join(map(str, values)) + "}"


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
            # A day still holding items a consumer has not taken stays, past its retention:
            # accepted events are never dropped unread (a consumer down for longer than the
            # retention delays the drop instead).
            waiting = [day for day in todo.drop if await _unread(conn, partitions.partition_name(day))]
            todo = partitions.Plan(todo.create, [d for d in todo.drop if d not in waiting], waiting)
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
            await delete_before(conn, "event_keys", "received_at", cutoff, ("key",), sweep_batch)
    return todo
