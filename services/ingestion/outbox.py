"""Forwards committed outbox rows to their consumers, at least once, in id order.

Each consumer (segmentation, decision) is drained by its own loop, so one being down does
not hold up the other; its rows simply wait. Rows are claimed with FOR UPDATE SKIP LOCKED
inside a transaction that lasts until the consumer acknowledged, so replicas of ingestion
never forward the same row at the same time. Consumers are idempotent (event ids, update
ids), so a row forwarded twice after a crash has no second effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from itertools import groupby

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# Sends one group of payloads of one app and kind; raises if the consumer did not take them.
Sender = Callable[[str, str, list[bytes]], Awaitable[None]]


class OutboxDispatcher:
    def __init__(self, pool: asyncpg.Pool, senders: dict[str, Sender], batch_size: int = 500,
                 poll_interval: float = 1.0, max_backoff: float = 5.0) -> None:
        self._pool = pool
        self._senders = senders
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._wake = {consumer: asyncio.Event() for consumer in senders}

    def wake(self, _payload: str | None = None) -> None:
        for event in self._wake.values():
            event.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._run_consumer(c) for c in self._senders))

    async def _run_consumer(self, consumer: str) -> None:
        backoff = 0.1
        wake = self._wake[consumer]
        while True:
            wake.clear()
            try:
                sent = await self.drain_once(consumer)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the consumer or database is down: wait, retry
                log.warning("outbox_send_failed", consumer=consumer, error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if sent == self._batch_size:
                continue  # more is waiting
            try:
                await asyncio.wait_for(wake.wait(), self._poll_interval)
            except asyncio.TimeoutError:
                pass

    async def drain_once(self, consumer: str) -> int:
        """Forwards one batch to the consumer; returns how many rows it forwarded."""
        send = self._senders[consumer]
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, app_id, kind, payload FROM outbox WHERE consumer = $1"
                " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                consumer, self._batch_size,
            )
            if not rows:
                return 0
            # Consecutive runs of one app and kind keep the id order across calls.
            for (app_id, kind), group in groupby(rows, key=lambda r: (r["app_id"], r["kind"])):
                await send(app_id, kind, [r["payload"] for r in group])
            await conn.execute("DELETE FROM outbox WHERE id = any($1::bigint[])", [r["id"] for r in rows])
        return len(rows)
