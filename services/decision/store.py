"""SQL for decision's own schema: campaigns and their versions, app settings, deliveries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import set_timestamp

CAMPAIGNS_CHANNEL = "nudge_campaigns"


def _campaign(row: asyncpg.Record) -> pb.Campaign:
    campaign = pb.Campaign.FromString(row["definition"])
    set_timestamp(campaign.create_time, row["created_at"])
    set_timestamp(campaign.update_time, row["updated_at"])
    return campaign


async def create_campaign(pool: asyncpg.Pool, app_id: str, campaign: pb.Campaign) -> pb.Campaign:
    campaign.id = f"cmp_{uuid.uuid4().hex}"
    campaign.version = 1
    campaign.ClearField("create_time")
    campaign.ClearField("update_time")
    blob = campaign.SerializeToString()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO campaigns (app_id, id, version, name, status, definition)"
            " VALUES ($1, $2, 1, $3, $4, $5) RETURNING *",
            app_id, campaign.id, campaign.name, campaign.status, blob)
        await conn.execute(
            "INSERT INTO campaign_versions (app_id, id, version, definition) VALUES ($1, $2, 1, $3)",
            app_id, campaign.id, blob)
        await conn.execute("SELECT pg_notify($1, $2)", CAMPAIGNS_CHANNEL, app_id)
    return _campaign(row)


async def save_version(pool: asyncpg.Pool, app_id: str, campaign: pb.Campaign,
                       expected_version: int) -> pb.Campaign | None:
    """Stores `campaign` as the next version. None when it does not exist or (with
    expected_version) was changed meanwhile."""
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchval(
            "SELECT version FROM campaigns WHERE app_id = $1 AND id = $2 FOR UPDATE", app_id, campaign.id)
        if current is None or (expected_version and current != expected_version):
            return None
        campaign.version = current + 1
        campaign.ClearField("create_time")
        campaign.ClearField("update_time")
        blob = campaign.SerializeToString()
        row = await conn.fetchrow(
            "UPDATE campaigns SET version = $3, name = $4, status = $5, definition = $6, updated_at = now()"
            " WHERE app_id = $1 AND id = $2 RETURNING *",
            app_id, campaign.id, campaign.version, campaign.name, campaign.status, blob)
        await conn.execute(
            "INSERT INTO campaign_versions (app_id, id, version, definition) VALUES ($1, $2, $3, $4)",
            app_id, campaign.id, campaign.version, blob)
        await conn.execute("SELECT pg_notify($1, $2)", CAMPAIGNS_CHANNEL, app_id)
    return _campaign(row)


async def get_campaign(pool: asyncpg.Pool, app_id: str, campaign_id: str, version: int = 0) -> pb.Campaign | None:
    if version:
        row = await pool.fetchrow(
            """SELECT v.definition, c.created_at, v.created_at AS updated_at
               FROM campaign_versions v JOIN campaigns c USING (app_id, id)
               WHERE v.app_id = $1 AND v.id = $2 AND v.version = $3""",
            app_id, campaign_id, version)
    else:
        row = await pool.fetchrow("SELECT * FROM campaigns WHERE app_id = $1 AND id = $2", app_id, campaign_id)
    return _campaign(row) if row else None


async def list_campaigns(pool: asyncpg.Pool, app_id: str, after: str, limit: int, status: int) -> list[pb.Campaign]:
    rows = await pool.fetch(
        "SELECT * FROM campaigns WHERE app_id = $1 AND id > $2 AND ($4 = 0 OR status = $4)"
        " ORDER BY id LIMIT $3",
        app_id, after, limit, status)
    return [_campaign(r) for r in rows]


async def active_campaigns(pool: asyncpg.Pool, app_id: str) -> list[pb.Campaign]:
    rows = await pool.fetch(
        "SELECT * FROM campaigns WHERE app_id = $1 AND status = $2", app_id, pb.CAMPAIGN_STATUS_ACTIVE)
    return [_campaign(r) for r in rows]


async def get_settings(pool: asyncpg.Pool, app_id: str) -> pb.AppSettings:
    blob = await pool.fetchval("SELECT settings FROM app_settings WHERE app_id = $1", app_id)
    return pb.AppSettings.FromString(blob) if blob else pb.AppSettings(default_time_zone="UTC")


async def put_settings(pool: asyncpg.Pool, app_id: str, settings: pb.AppSettings) -> None:
    await pool.execute(
        """INSERT INTO app_settings (app_id, settings) VALUES ($1, $2)
           ON CONFLICT (app_id) DO UPDATE SET settings = excluded.settings, updated_at = now()""",
        app_id, settings.SerializeToString())
    await pool.execute("SELECT pg_notify($1, $2)", CAMPAIGNS_CHANNEL, app_id)


@dataclass(frozen=True)
class Delivery:
    message_id: str
    campaign_id: str
    variant_id: str


async def record_deliveries(pool: asyncpg.Pool, app_id: str, user_id: str, at: datetime,
                            deliveries: list[Delivery]) -> None:
    """Counts messages as handed out: one statement, one commit, however many messages."""
    await pool.execute(
        """INSERT INTO deliveries (app_id, user_id, message_id, campaign_id, variant_id, delivered_at)
           SELECT $1, $2, m, c, v, $3 FROM unnest($4::text[], $5::text[], $6::text[]) AS t(m, c, v)""",
        app_id, user_id, at,
        [d.message_id for d in deliveries], [d.campaign_id for d in deliveries], [d.variant_id for d in deliveries])


async def apply_events(pool: asyncpg.Pool, app_id: str, events: list[common_pb2.Event]) -> int:
    """Records events once each (triggers build on this); returns how many were new."""
    rows = await pool.fetch(
        """INSERT INTO applied_events (app_id, event_id, user_id, name)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
           ON CONFLICT DO NOTHING RETURNING 1""",
        app_id, [e.event_id for e in events], [e.user_id for e in events], [e.name for e in events])
    return len(rows)


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM deliveries WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("DELETE FROM applied_events WHERE app_id = $1 AND user_id = $2", app_id, user_id)
