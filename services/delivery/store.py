"""SQL for delivery's own schema: the inbox and messages handed out, interactions, control
exposures, conversions (the log of interaction events is interaction_events.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudgelib.eventlog.dispatcher import lock_lane
from nudgelib.eventlog.lanes import lane_of
from nudgelib.protoconv import set_timestamp, to_datetime, to_timedelta
from services.delivery import interaction_events
from services.delivery.model import InteractionRow, MessageRow, SurveyRow

INBOX_CHANNEL = "nudge_inbox"

_COLUMNS = "message_id, user_id, campaign_id, campaign_version, variant_id, locale, content, created_at, " \
           "expire_at, event_properties, conversion_events, conversion_deadline, test"


def _arrays(decisions: list[decision_pb.Decision]) -> list[list]:
    return [
        [d.message_id for d in decisions], [d.campaign_id for d in decisions],
        [d.campaign_version for d in decisions], [d.variant_id for d in decisions],
        [d.locale for d in decisions], [d.content.SerializeToString() for d in decisions],
        [to_datetime(d.expire_time) for d in decisions],
        [d.event_properties.SerializeToString() if d.HasField("event_properties") else None for d in decisions],
        ["\x1f".join(d.conversion_events) for d in decisions],
        [to_timedelta(d.conversion_deadline) if d.HasField("conversion_deadline") else None for d in decisions],
        [d.test for d in decisions],
    ]


_INSERT = """
    INSERT INTO messages (app_id, user_id, status, triggered, delivered_at, delivered_via, created_at,
                          message_id, campaign_id, campaign_version, variant_id, locale, content, expire_at,
                          event_properties, conversion_events, conversion_deadline, test)
    SELECT $1, $2, $3, $4, $5, $6, $7, m, c, v, var, l, b, e, p,
           CASE WHEN ce = '' THEN '{}'::text[] ELSE string_to_array(ce, E'\\x1f') END, cd, t
    FROM unnest($8::text[], $9::text[], $10::int[], $11::text[], $12::text[], $13::bytea[],
                $14::timestamptz[], $15::bytea[], $16::text[], $17::interval[], $18::bool[])
        AS t(m, c, v, var, l, b, e, p, ce, cd, t)
    ON CONFLICT (app_id, user_id, message_id) DO NOTHING
    RETURNING message_id
"""


# Sends that ended without reaching the user, with no content: each counted once, under its reason.
_INSERT_ENDED = """
    INSERT INTO messages (app_id, user_id, status, triggered, created_at, expire_at, content,
                          message_id, campaign_id, campaign_version, variant_id, drop_reason)
    SELECT $1, $2, s, $3, $4, $4, ''::bytea, m, c, v, var, r
    FROM unnest($5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[])
        AS t(s, m, c, v, var, r)
    ON CONFLICT (app_id, user_id, message_id) DO NOTHING
"""


@dataclass(frozen=True)
class Ended:
    """A send that ended without reaching the user: status 'expired', or 'dropped' with a
    reason (a DropReason name)."""

    message_id: str
    campaign_id: str
    campaign_version: int
    variant_id: str
    status: str
    reason: str = ""


async def _insert_ended(conn: asyncpg.Connection, app_id: str, user_id: str, now: datetime, triggered: bool,
                        ended: list[Ended]) -> None:
    if ended:
        await conn.execute(_INSERT_ENDED, app_id, user_id, triggered, now, [e.status for e in ended],
                           [e.message_id for e in ended], [e.campaign_id for e in ended],
                           [e.campaign_version for e in ended], [e.variant_id for e in ended],
                           [e.reason for e in ended])


async def enqueue(pool: asyncpg.Pool, app_id: str, user_id: str, now: datetime,
                  decisions: list[decision_pb.Decision], controls: list[decision_pb.Decision],
                  notify_payload: str, unsent: list[Ended] = ()) -> list[str]:
    """Puts triggered messages in the inbox, records control exposures and the sends that
    ended at release; idempotent per message id. Returns the ids new to the inbox, and
    notifies every replica."""
    async with pool.acquire() as conn, conn.transaction():
        added = []
        if decisions:
            added = [r["message_id"] for r in await conn.fetch(
                _INSERT, app_id, user_id, "pending", True, None, "", now, *_arrays(decisions))]
        if controls:
            await conn.execute(_INSERT, app_id, user_id, "control", True, now, "", now, *_arrays(controls))
        await _insert_ended(conn, app_id, user_id, now, True, list(unsent))
        if added:
            await conn.execute("SELECT pg_notify($1, $2)", INBOX_CHANNEL, notify_payload)
    return added


@dataclass(frozen=True)
class InboxItem:
    decision: decision_pb.Decision


def _decision(r: asyncpg.Record) -> decision_pb.Decision:
    d = decision_pb.Decision(
        message_id=r["message_id"], campaign_id=r["campaign_id"], campaign_version=r["campaign_version"],
        variant_id=r["variant_id"], locale=r["locale"],
        content=common_pb2.MessageContent.FromString(r["content"]),
        conversion_events=list(r["conversion_events"]), test=r["test"])
    set_timestamp(d.expire_time, r["expire_at"])
    if r["event_properties"]:
        d.event_properties.ParseFromString(r["event_properties"])
    if r["conversion_deadline"] is not None:
        d.conversion_deadline.FromTimedelta(r["conversion_deadline"])
    return d


async def inbox(pool: asyncpg.Pool, app_id: str, user_id: str, now: datetime) -> list[decision_pb.Decision]:
    """The user's pending, unexpired triggered messages, oldest first."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM messages WHERE app_id = $1 AND user_id = $2 AND status = 'pending'"
        " AND expire_at > $3 ORDER BY created_at, message_id", app_id, user_id, now)
    return [_decision(r) for r in rows]


@dataclass(frozen=True)
class HandOut:
    """One hand-out to record: the rendered messages it hands out (`handed`: those whose ids
    are in `inbox` came from the user's inbox, the others are on-request ones, new here), its
    control exposures, the dead pending ones with their reason (`dropped`: id, reason name),
    and those whose template failed (`failed`)."""

    app_id: str
    user_id: str
    at: datetime
    via: str
    handed: list[decision_pb.Decision]
    controls: list[decision_pb.Decision] = ()
    dropped: list[tuple[str, str]] = ()
    failed: list[decision_pb.Decision] = ()
    inbox: frozenset[str] = frozenset()


# Pending messages still pending become delivered, several users' at once; the rendered
# content replaces the template, so a replay shows what was shown.
_FLIP_DELIVERED = """
    UPDATE messages m SET status = 'delivered', delivered_at = x.at, delivered_via = x.via, content = x.b
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[], $6::text[])
        AS x(a, u, id, b, at, via)
    WHERE m.app_id = x.a AND m.user_id = x.u AND m.message_id = x.id AND m.status = 'pending'
    RETURNING m.app_id, m.user_id, m.message_id"""

_FLIP_DROPPED = """
    UPDATE messages m SET status = 'dropped', drop_reason = x.r
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS x(a, u, id, r)
    WHERE m.app_id = x.a AND m.user_id = x.u AND m.message_id = x.id AND m.status = 'pending'"""

# On-request messages handed out and control exposures, several users' at once.
_INSERT_HANDED = """
    INSERT INTO messages (app_id, user_id, status, triggered, delivered_at, delivered_via, created_at,
                          message_id, campaign_id, campaign_version, variant_id, locale, content, expire_at,
                          event_properties, conversion_events, conversion_deadline, test)
    SELECT a, u, s, false, at, via, at, m, c, v, var, l, b, e, p,
           CASE WHEN ce = '' THEN '{}'::text[] ELSE string_to_array(ce, E'\\x1f') END, cd, t
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], $11::bytea[],
                $12::timestamptz[], $13::bytea[], $14::text[], $15::interval[], $16::bool[])
        AS t(a, u, s, at, via, m, c, v, var, l, b, e, p, ce, cd, t)
    ON CONFLICT (app_id, user_id, message_id) DO NOTHING
    RETURNING app_id, user_id, message_id, status"""

# On-request messages whose template failed: recorded as dropped, with no content.
_INSERT_FAILED = """
    INSERT INTO messages (app_id, user_id, status, triggered, created_at, expire_at, content,
                          message_id, campaign_id, campaign_version, variant_id, drop_reason)
    SELECT a, u, 'dropped', false, at, at, ''::bytea, m, c, v, var, 'RENDER_FAILED'
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], $7::text[])
        AS t(a, u, at, m, c, v, var)
    ON CONFLICT (app_id, user_id, message_id) DO NOTHING"""


async def hand_out(pool: asyncpg.Pool, hand_outs: list[HandOut]) -> list[set[str]]:
    """Records hand-outs, several users' at once, in one transaction of at most four
    statements whatever their number (one statement, so no BEGIN and COMMIT of its own, when
    nothing came from an inbox and nothing failed: the usual pull). Returns, for each, the
    ids it handed out.

    - A pending message becomes delivered only if still pending: a concurrent stream or
      pull (here or on another replica) may have taken it, and then it is not handed out
      here. The row lock of the UPDATE makes the second one wait and find it taken. Within
      the batch, the first hand-out that holds it takes it. Rows are given in one order (by
      app, user, message), so that batches of several replicas lock shared rows in the same
      order.
    - On-request messages and control exposures are inserted.
    - Dead pending ones flip to dropped with their reason; those whose template failed are
      dropped as RENDER_FAILED (a pending one flips, an on-request one is recorded); a
      pending one another hand-out took is left as it is.

    If the transaction fails, nothing of any hand-out in it is recorded, and the exception
    is raised to the caller of each."""
    claimed: dict[tuple[str, str, str], int] = {}
    flips: list[tuple] = []
    inserts: list[tuple] = []
    drops: list[tuple] = []
    failures: list[tuple] = []
    for i, h in enumerate(hand_outs):
        for d in h.handed:
            key = (h.app_id, h.user_id, d.message_id)
            if d.message_id not in h.inbox:
                inserts.append((h.app_id, h.user_id, "delivered", h.at, h.via, d, i))
            elif key not in claimed:
                claimed[key] = i
                flips.append((*key, d.content.SerializeToString(), h.at, h.via))
        for d in h.controls:
            inserts.append((h.app_id, h.user_id, "control", h.at, h.via, d, i))
        drops.extend((h.app_id, h.user_id, message_id, reason) for message_id, reason in h.dropped)
        for d in h.failed:
            if d.message_id in h.inbox:
                drops.append((h.app_id, h.user_id, d.message_id, "RENDER_FAILED"))
            else:
                failures.append((h.app_id, h.user_id, h.at, d.message_id, d.campaign_id, d.campaign_version,
                                 d.variant_id))
    flips.sort(key=lambda f: f[:3])
    drops.sort(key=lambda f: f[:3])
    won: list[set[str]] = [set() for _ in hand_outs]
    statements = bool(flips) + bool(inserts) + bool(drops) + bool(failures)
    async with pool.acquire() as conn, (conn.transaction() if statements > 1 else contextlib.nullcontext()):
        if flips:
            for r in await conn.fetch(_FLIP_DELIVERED, *_columns(flips, 6)):
                won[claimed[(r["app_id"], r["user_id"], r["message_id"])]].add(r["message_id"])
        if inserts:
            owner = {(a, u, d.message_id): i for a, u, status, _, _, d, i in inserts if status == "delivered"}
            for r in await conn.fetch(_INSERT_HANDED, *_columns(inserts, 5), *_arrays([row[5] for row in inserts])):
                if r["status"] == "delivered":
                    won[owner[(r["app_id"], r["user_id"], r["message_id"])]].add(r["message_id"])
        if drops:
            await conn.execute(_FLIP_DROPPED, *_columns(drops, 4))
        if failures:
            await conn.execute(_INSERT_FAILED, *_columns(failures, 7))
    return won


def _columns(rows: list[tuple], width: int) -> list[list]:
    """The first `width` fields of rows as one list per column, for unnest."""
    return [[row[i] for row in rows] for i in range(width)]


async def delivered_after(pool: asyncpg.Pool, app_id: str, user_id: str, last_message_id: str,
                          now: datetime) -> list[decision_pb.Decision] | None:
    """Messages handed to the user after `last_message_id` and not yet expired, in order
    (None when that message is unknown)."""
    anchor = await pool.fetchrow(
        "SELECT delivered_at FROM messages WHERE app_id = $1 AND user_id = $2 AND message_id = $3"
        " AND status = 'delivered'", app_id, user_id, last_message_id)
    if anchor is None:
        return None
    rows = await pool.fetch(
        f"""SELECT {_COLUMNS} FROM messages
            WHERE app_id = $1 AND user_id = $2 AND status = 'delivered' AND expire_at > $5
              AND (delivered_at, message_id) > ($3, $4)
            ORDER BY delivered_at, message_id""",
        app_id, user_id, anchor["delivered_at"], last_message_id, now)
    return [_decision(r) for r in rows]


async def message_decision(pool: asyncpg.Pool, app_id: str, user_id: str,
                           message_ids: list[str]) -> list[decision_pb.Decision]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM messages WHERE app_id = $1 AND user_id = $2 AND message_id = any($3::text[])"
        " ORDER BY delivered_at, message_id", app_id, user_id, message_ids)
    return [_decision(r) for r in rows]


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    user_id: str
    campaign_id: str
    variant_id: str
    status: str
    content: common_pb2.MessageContent
    test: bool = False


async def get_message(pool: asyncpg.Pool, app_id: str, user_id: str, message_id: str) -> StoredMessage | None:
    """The user's message (None: no such message, or another user's)."""
    row = await pool.fetchrow(
        "SELECT message_id, user_id, campaign_id, variant_id, status, content, test FROM messages"
        " WHERE app_id = $1 AND user_id = $2 AND message_id = $3", app_id, user_id, message_id)
    if row is None:
        return None
    return StoredMessage(row["message_id"], row["user_id"], row["campaign_id"], row["variant_id"],
                         row["status"], common_pb2.MessageContent.FromString(row["content"]), row["test"])


async def record_interaction(pool: asyncpg.Pool, app_id: str, user_id: str, message_id: str, kind: int,
                             button_id: str, answers: bytes | None, at: datetime, event: bytes | None) -> bool:
    """Records an interaction once and queues its event for ingestion (unless `event` is
    None: a test message's), in one transaction. True if recorded now, False if the same
    interaction had been recorded before."""
    async with pool.acquire() as conn, conn.transaction():
        if event is not None:
            await interaction_events.begin_writing(conn)
        row = await conn.fetchrow(
            """INSERT INTO interactions (app_id, user_id, message_id, type, button_id, answers, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1""",
            app_id, user_id, message_id, kind, button_id, answers, at)
        if row is None:
            return False
        if event is not None:
            await interaction_events.queue(conn, app_id, user_id, event)
    return True


async def apply_events(pool: asyncpg.Pool, app_id: str, events: list[common_pb2.Event]) -> int:
    """Attributes conversions: an event converts each message (or control exposure) of its
    user whose campaign names it, if it happened within the deadline after delivery (or
    exposure). Once per message (the conversion's key), so a redelivered event has no second
    effect; one statement per batch, which writes only when something converts."""
    if not events:
        return 0
    rows = await pool.fetch(
        """INSERT INTO conversions (app_id, user_id, message_id, campaign_id, variant_id, event_id, converted_at)
           SELECT DISTINCT ON (m.message_id) $1, m.user_id, m.message_id, m.campaign_id, m.variant_id, e.event_id, e.at
           FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS e(event_id, user_id, name, at)
           JOIN messages m ON m.app_id = $1 AND m.user_id = e.user_id
               AND m.status IN ('delivered', 'control') AND cardinality(m.conversion_events) > 0
               AND e.name = any(m.conversion_events)
               AND e.at >= m.delivered_at AND e.at <= m.delivered_at + m.conversion_deadline
           ORDER BY m.message_id, e.at
           ON CONFLICT DO NOTHING RETURNING 1""",
        app_id, [e.event_id for e in events], [e.user_id for e in events], [e.name for e in events],
        [to_datetime(e.occurred_time) for e in events])
    return len(rows)


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # Interactions and conversions go with their messages (ON DELETE CASCADE).
        await conn.execute("DELETE FROM messages WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        # A reader sending the user's lane is waited for: none of the user's is sent after this.
        await lock_lane(conn, interaction_events.LOG, lane_of(app_id, user_id))
        await conn.execute("DELETE FROM event_outbox WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("DELETE FROM dead_letters WHERE app_id = $1 AND $2 = any(user_ids)", app_id, user_id)


# The messages a campaign's statistics count: sent in [$3, $4) (unset bounds: unbounded), and
# never a test send.
_STATS_WINDOW = """m.app_id = $1 AND m.campaign_id = $2 AND NOT m.test
                   AND ($3::timestamptz IS NULL OR m.created_at >= $3)
                   AND ($4::timestamptz IS NULL OR m.created_at < $4)"""


async def campaign_rows(pool: asyncpg.Pool, app_id: str, campaign_id: str, start: datetime | None,
                        end: datetime | None, now: datetime) -> tuple[list[MessageRow], list[InteractionRow]]:
    """Message counts per variant, status and drop reason (a pending message past its expiry
    counts as expired), and interaction counts per variant, for messages created in
    [start, end): grouped queries, no loop."""
    window = _STATS_WINDOW
    async with pool.acquire() as conn:
        sent = await conn.fetch(
            f"""SELECT m.variant_id,
                       CASE WHEN m.status = 'pending' AND m.expire_at <= $5 THEN 'expired' ELSE m.status END
                           AS status,
                       m.drop_reason, count(*) AS n, count(c.message_id) AS conversions
                FROM messages m LEFT JOIN conversions c USING (app_id, user_id, message_id)
                WHERE {window}
                GROUP BY 1, 2, 3""",
            app_id, campaign_id, start, end, now)
        acts = await conn.fetch(
            f"""SELECT m.variant_id, i.type, i.button_id, count(*) AS n,
                       array_agg(i.answers) FILTER (WHERE i.answers IS NOT NULL) AS answers
                FROM interactions i JOIN messages m USING (app_id, user_id, message_id)
                WHERE {window}
                GROUP BY m.variant_id, i.type, i.button_id""",
            app_id, campaign_id, start, end)
    return ([MessageRow(r["variant_id"], r["status"], r["n"], r["conversions"], r["drop_reason"]) for r in sent],
            [InteractionRow(r["variant_id"], r["type"], r["button_id"], r["n"], tuple(r["answers"] or ()))
             for r in acts])


async def daily_rows(pool: asyncpg.Pool, app_id: str, campaign_id: str, start: datetime, end: datetime,
                     now: datetime, time_zone: str) -> dict[date, tuple[list[MessageRow], list[InteractionRow]]]:
    """campaign_rows' counts for each day of [start, end) in `time_zone` (the day a message
    was sent; its interactions and conversion count on that day), in one query: messages
    and interactions grouped per day side by side. Days without messages are absent."""
    rows = await pool.fetch(
        f"""WITH m AS (
                SELECT m.user_id, m.message_id, m.variant_id, (m.created_at AT TIME ZONE $6)::date AS day,
                       CASE WHEN m.status = 'pending' AND m.expire_at <= $5 THEN 'expired' ELSE m.status END
                           AS status,
                       m.drop_reason
                FROM messages m WHERE {_STATS_WINDOW})
            SELECT 'm' AS kind, m.day, m.variant_id, m.status, m.drop_reason, 0 AS type, '' AS button_id,
                   count(*) AS n, count(c.message_id) AS conversions, NULL::bytea[] AS answers
            FROM m LEFT JOIN conversions c ON c.app_id = $1 AND c.user_id = m.user_id AND c.message_id = m.message_id
            GROUP BY m.day, m.variant_id, m.status, m.drop_reason
            UNION ALL
            SELECT 'i', m.day, m.variant_id, '', '', i.type, i.button_id, count(*), 0,
                   array_agg(i.answers) FILTER (WHERE i.answers IS NOT NULL)
            FROM interactions i JOIN m ON i.app_id = $1 AND i.user_id = m.user_id AND i.message_id = m.message_id
            GROUP BY m.day, m.variant_id, i.type, i.button_id""",
        app_id, campaign_id, start, end, now, time_zone)
    out: dict[date, tuple[list[MessageRow], list[InteractionRow]]] = {}
    for r in rows:
        messages, interactions = out.setdefault(r["day"], ([], []))
        if r["kind"] == "m":
            messages.append(MessageRow(r["variant_id"], r["status"], r["n"], r["conversions"], r["drop_reason"]))
        else:
            interactions.append(InteractionRow(r["variant_id"], r["type"], r["button_id"], r["n"],
                                               tuple(r["answers"] or ())))
    return out


async def survey_rows(pool: asyncpg.Pool, app_id: str, campaign_id: str, variant_id: str,
                      start: datetime | None, end: datetime | None,
                      after: tuple[datetime, str] | None, limit: int) -> list[SurveyRow]:
    """Survey reports of a campaign's messages (test messages' left out) answered in
    [start, end), in (answered time, message id) order from `after` (inclusive: its report may be partly read), at most `limit`."""
    rows = await pool.fetch(
        """SELECT i.message_id, m.user_id, m.variant_id, i.answers, i.occurred_at
           FROM interactions i JOIN messages m USING (app_id, user_id, message_id)
           WHERE i.app_id = $1 AND i.type = $2 AND m.campaign_id = $3 AND ($4 = '' OR m.variant_id = $4)
             AND NOT m.test
             AND ($5::timestamptz IS NULL OR i.occurred_at >= $5)
             AND ($6::timestamptz IS NULL OR i.occurred_at < $6)
             AND ($7::timestamptz IS NULL OR (i.occurred_at, i.message_id) >= ($7, $8))
           ORDER BY i.occurred_at, i.message_id
           LIMIT $9""",
        app_id, pb.INTERACTION_TYPE_SURVEY_ANSWER, campaign_id, variant_id, start, end,
        after[0] if after else None, after[1] if after else "", limit)
    return [SurveyRow(r["message_id"], r["user_id"], r["variant_id"], r["answers"], r["occurred_at"]) for r in rows]
