"""Rows kept for a window, then deleted: in bounded batches (no long lock, no huge
transaction), on a loop in the background of the service that owns them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from nudgelib.clock import Clock
from nudgelib.loops import Backoff, Loop

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Retention:
    table: str  # in the pool's search path
    column: str  # a timestamptz; rows older than `keep` by it go
    keep: timedelta
    key: tuple[str, ...]  # the table's primary key columns: a batch is chosen by them
    # Only rows that also match this SQL condition go (e.g. finished ones); "" for all.
    where: str = ""


async def delete_before(conn: asyncpg.Connection | asyncpg.Pool, table: str, column: str, before: datetime,
                        key: tuple[str, ...], batch: int = 50_000, where: str = "") -> int:
    """Deletes the rows whose `column` is before `before` (and that match `where`), `batch`
    rows per statement (each its own short transaction outside one of the caller's).

    A batch is named by primary key, not by ctid: a distributed table (Citus) has no ctid
    the coordinator could hand back to its shards, while a key list is planned as an
    intermediate result that every shard deletes from (docs/citus.md)."""
    deleted = 0
    also = f" AND ({where})" if where else ""
    columns = ", ".join(key)
    while True:
        result = await conn.execute(
            f"""DELETE FROM {table} WHERE ({columns}) IN (
                    SELECT {columns} FROM {table} WHERE {column} < $1{also} LIMIT $2)""", before, batch)
        n = int(result.split()[-1])
        deleted += n
        if n < batch:
            return deleted


async def prune(pool: asyncpg.Pool, now: datetime, retentions: list[Retention]) -> dict[str, int]:
    """One pass: rows deleted per table."""
    return {r.table: await delete_before(pool, r.table, r.column, now - r.keep, r.key, where=r.where)
            for r in retentions}


async def prune_loop(pool: asyncpg.Pool, clock: Clock, retentions: list[Retention], interval: float) -> None:
    """Prunes every `interval` seconds; a failed pass is tried again at the next one."""

    async def step() -> None:
        deleted = await prune(pool, clock.now(), retentions)
        if any(deleted.values()):
            log.info("rows_pruned", **{t: n for t, n in deleted.items() if n})

    await Loop("prune", step, poll=interval, backoff=Backoff.steady(interval)).run()
