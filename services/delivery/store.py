"""SQL for delivery's own schema: messages handed out and interactions with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudgelib.protoconv import to_datetime


async def save_delivered(pool: asyncpg.Pool, app_id: str, user_id: str, now: datetime,
                         decisions: list[decision_pb.Decision]) -> None:
    """Records messages handed to the client in this pull: one statement."""
    await pool.execute(
        """INSERT INTO messages (app_id, message_id, user_id, campaign_id, campaign_version, variant_id,
                                 locale, content, created_at, expire_at, delivered_at)
           SELECT $1, m, $2, c, v, var, l, b, $3, e, $3
           FROM unnest($4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::bytea[],
                       $10::timestamptz[]) AS t(m, c, v, var, l, b, e)""",
        app_id, user_id, now,
        [d.message_id for d in decisions], [d.campaign_id for d in decisions],
        [d.campaign_version for d in decisions], [d.variant_id for d in decisions],
        [d.locale for d in decisions], [d.content.SerializeToString() for d in decisions],
        [to_datetime(d.expire_time) for d in decisions],
    )


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    user_id: str
    campaign_id: str
    variant_id: str
    content: common_pb2.MessageContent


async def get_message(pool: asyncpg.Pool, app_id: str, message_id: str) -> StoredMessage | None:
    row = await pool.fetchrow(
        "SELECT message_id, user_id, campaign_id, variant_id, content FROM messages"
        " WHERE app_id = $1 AND message_id = $2", app_id, message_id)
    if row is None:
        return None
    return StoredMessage(row["message_id"], row["user_id"], row["campaign_id"], row["variant_id"],
                         common_pb2.MessageContent.FromString(row["content"]))


async def record_interaction(pool: asyncpg.Pool, app_id: str, message_id: str, kind: int,
                             button_id: str, answers: bytes | None, at: datetime) -> bool:
    """True if recorded now, False if the same interaction had been recorded before."""
    row = await pool.fetchrow(
        """INSERT INTO interactions (app_id, message_id, type, button_id, answers, occurred_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1""",
        app_id, message_id, kind, button_id, answers, at)
    return row is not None


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str) -> None:
    # Interactions go with their messages (ON DELETE CASCADE).
    await pool.execute("DELETE FROM messages WHERE app_id = $1 AND user_id = $2", app_id, user_id)


@dataclass
class VariantCounts:
    variant_id: str
    sent: int = 0
    delivered: int = 0
    impressions: int = 0
    dismissals: int = 0
    clicks_by_button: dict[str, int] = field(default_factory=dict)
    answers: list[bytes] = field(default_factory=list)


async def campaign_counts(pool: asyncpg.Pool, app_id: str, campaign_id: str,
                          start: datetime | None, end: datetime | None) -> list[VariantCounts]:
    """Per-variant counts for messages created in [start, end): two grouped queries."""
    async with pool.acquire() as conn:
        sent = await conn.fetch(
            """SELECT variant_id, count(*) AS sent, count(delivered_at) AS delivered
               FROM messages WHERE app_id = $1 AND campaign_id = $2
                 AND ($3::timestamptz IS NULL OR created_at >= $3)
                 AND ($4::timestamptz IS NULL OR created_at < $4)
               GROUP BY variant_id ORDER BY variant_id""",
            app_id, campaign_id, start, end)
        acts = await conn.fetch(
            """SELECT m.variant_id, i.type, i.button_id, count(*) AS n,
                      array_agg(i.answers) FILTER (WHERE i.answers IS NOT NULL) AS answers
               FROM interactions i JOIN messages m USING (app_id, message_id)
               WHERE m.app_id = $1 AND m.campaign_id = $2
                 AND ($3::timestamptz IS NULL OR m.created_at >= $3)
                 AND ($4::timestamptz IS NULL OR m.created_at < $4)
               GROUP BY m.variant_id, i.type, i.button_id""",
            app_id, campaign_id, start, end)
    counts = {r["variant_id"]: VariantCounts(r["variant_id"], r["sent"], r["delivered"]) for r in sent}
    for r in acts:
        c = counts.setdefault(r["variant_id"], VariantCounts(r["variant_id"]))
        kind = r["type"]
        if kind == pb.INTERACTION_TYPE_IMPRESSION:
            c.impressions += r["n"]
        elif kind == pb.INTERACTION_TYPE_CLICK:
            c.clicks_by_button[r["button_id"]] = c.clicks_by_button.get(r["button_id"], 0) + r["n"]
        elif kind == pb.INTERACTION_TYPE_DISMISS:
            c.dismissals += r["n"]
        elif kind == pb.INTERACTION_TYPE_SURVEY_ANSWER:
            c.answers.extend(r["answers"] or [])
    return list(counts.values())
