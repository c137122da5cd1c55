"""A transactional outbox dispatcher that keeps order per key (per user), across replicas.

A service writes outbox rows in the transaction of the change they announce, each with a
`shard` derived from its ordering key (`shard_of`). The dispatcher sends them at least once,
in id order within a shard: a shard is drained by one replica at a time (a transaction-level
advisory lock taken with try-lock, so replicas share the shards without waiting on each
other), and its rows are deleted only once the consumer has taken them, in the same
transaction. A failure keeps the rows and backs off (nudgelib.loops); the next attempt starts again from
the oldest row of the shard, so a key's rows are never reordered.

The table needs: id (bigserial), shard (integer), app_id (text), kind (text), payload (bytea).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

import asyncpg

from nudgelib.loops import AT_ONCE, Backoff, Loop

# Sends the payloads of one run of rows of one app and kind; raises if not taken.
Sender = Callable[[str, str, list[bytes]], Awaitable[None]]


def shard_of(key: str, shards: int) -> int:
    """A stable shard for an ordering key (same in every process and language: crc32)."""
    return zlib.crc32(key.encode()) % shards


class ShardedOutbox:
    def __init__(self, pool: asyncpg.Pool, table: str, send: Sender, shards: int, batch_size: int = 500,
                 max_request_bytes: int = 4 * 1024 * 1024, poll_interval: float = 1.0,
                 max_backoff: float = 10.0) -> None:
        self._pool = pool
        self._table = table
        self._send = send
        self._shards = shards
        self._batch_size = batch_size
        self._max_request_bytes = max_request_bytes
        self._loop = Loop(f"outbox-{table}", self._step, poll=poll_interval, backoff=Backoff(maximum=max_backoff))
        # Advisory locks are per database: the table name keeps two outboxes apart.
        self._lock_space = zlib.crc32(f"outbox:{table}".encode()) - 2**31

    def wake(self, _payload: str | None = None) -> None:
        self._loop.wake()

    async def run(self) -> None:
        await self._loop.run()

    async def _step(self) -> float | None:
        return AT_ONCE if await self.drain() else None  # a full batch: more is waiting

    async def drain(self) -> bool:
        """One pass over the shards; true if some shard had more rows than one batch."""
        full = False
        for shard in range(self._shards):
            sent = await self.drain_shard(shard)
            full = full or sent == self._batch_size
        return full

    async def drain_shard(self, shard: int) -> int:
        """Sends one batch of a shard; returns how many rows (0 if another replica holds it)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", self._lock_space, shard):
                return 0
            rows = await conn.fetch(
                f"SELECT id, app_id, kind, payload FROM {self._table} WHERE shard = $1 ORDER BY id LIMIT $2"
                " FOR UPDATE", shard, self._batch_size)
            if not rows:
                return 0
            run: list[bytes] = []
            size = 0
            for i, row in enumerate(rows):
                run.append(bytes(row["payload"]))
                size += len(run[-1])
                last = i + 1 == len(rows)
                if last or (rows[i + 1]["app_id"], rows[i + 1]["kind"]) != (row["app_id"], row["kind"]) \
                        or size >= self._max_request_bytes:
                    await self._send(row["app_id"], row["kind"], run)
                    run, size = [], 0
            await conn.execute(f"DELETE FROM {self._table} WHERE id = any($1::bigint[])", [r["id"] for r in rows])
        return len(rows)
