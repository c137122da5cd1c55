"""Rows past their retention are deleted, in bounded batches; newer rows stay."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from nudgelib import db
from nudgelib.retention import Retention, delete_before, prune
from services.decision.settings import DecisionSettings

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


async def test_old_rows_go_in_bounded_batches(database_url):
    table = f"public.retention_probe_{secrets.token_hex(4)}"
    pool = await db.create_pool(database_url, "decision", 1, 2)
    try:
        await pool.execute(f"CREATE TABLE {table} (id text, at timestamptz)")
        await pool.executemany(f"INSERT INTO {table} (id, at) VALUES ($1, $2)",
                               [(f"old-{i}", NOW - timedelta(days=8)) for i in range(5)] + [("new", NOW - timedelta(days=1))])
        # Five old rows, two per statement: the loop goes on until a batch comes back short.
        deleted = await delete_before(pool, table, "at", NOW - timedelta(days=7), ("id",), batch=2)
        assert deleted == 5
        assert [r[0] for r in await pool.fetch(f"SELECT id FROM {table}")] == ["new"]
        assert await prune(pool, NOW, [Retention(table, "at", timedelta(days=7), key=("id",))]) == {table: 0}
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()


async def test_decision_deletes_settled_sends_past_their_window_and_keeps_pending_ones(database_url):
    """Explain's history of cancelled, dropped and released sends is kept for its window; a
    send still pending is kept however old it is."""
    app = f"app_{secrets.token_hex(4)}"
    pool = await db.create_pool(database_url, "decision", 1, 2)
    try:
        rows = [("old-pending", "pending", 40), ("old-dropped", "dropped", 40), ("old-released", "released", 31),
                ("recent-cancelled", "cancelled", 29)]
        await pool.executemany(
            """INSERT INTO pending_sends (app_id, id, user_id, campaign_id, trigger_index, cause, triggered_at,
                                          due_at, expire_at, status, updated_at)
               VALUES ($1, $2, 'u', 'c', 0, $2, $4::timestamptz, $4::timestamptz, $4::timestamptz + interval '400 days', $3, $4::timestamptz)""",
            [(app, name, status, NOW - timedelta(days=age)) for name, status, age in rows])
        await prune(pool, NOW, DecisionSettings(settled_send_retention_days=30).retentions())
        left = {r[0] for r in await pool.fetch("SELECT id FROM pending_sends WHERE app_id = $1", app)}
        assert left == {"old-pending", "recent-cancelled"}
        assert all(r.table != "pending_sends"
                   for r in DecisionSettings(settled_send_retention_days=0).retentions())
    finally:
        await pool.close()
