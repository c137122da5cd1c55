"""Forwards committed outbox rows to their consumers: at least once, and in order per user
across any number of ingestion replicas.

Users are hashed into lanes (keys.py). A dispatch loop claims a set of lanes with
transaction-level advisory locks, reads their oldest rows in id order, forwards them in as
few calls as grouping allows, deletes them and commits, which releases the lanes. Since one
loop at a time holds a lane, a user's rows reach a consumer in the order they were written,
whichever replica forwards them (a write acknowledged before the next one was sent always
goes first; two concurrent writes of one user have no order between them). A crash mid-way
releases the locks and the rows are forwarded again, which idempotent consumers (event ids,
update ids) absorb.

Each consumer has its own loops (nudgelib.loops), so one being down does not hold up the
other: its rows wait (and count toward backpressure) until it is back.
"""

from __future__ import annotations

import math
import random
import time

import asyncpg
import grpc
import structlog

from nudgelib.loops import AT_ONCE, Backoff, Loop, run_together
from services.ingestion import store
from services.ingestion.consumers import Consumer
from services.ingestion.grouping import group
from services.ingestion.keys import LANES
from services.ingestion.metrics import IngestionMetrics

log = structlog.get_logger(__name__)


class OutboxDispatcher:
    def __init__(self, pool: asyncpg.Pool, consumers: dict[str, Consumer], metrics: IngestionMetrics | None = None,
                 *, workers: int = 2, batch_events: int = 4000, poll_interval: float = 1.0,
                 max_backoff: float = 5.0) -> None:
        self._pool = pool
        self._consumers = consumers
        self._metrics = metrics
        self._batch_events = batch_events
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        # Each loop claims at most its share of the lanes, so the loops of a process (and of
        # several replicas) split the lanes rather than one taking them all.
        self.lanes_per_claim = math.ceil(LANES / workers)
        self._loops = [self._loop(c, i) for c in consumers for i in range(workers)]
        # Items this dispatcher has had acknowledged (also in metrics; read by tests).
        self.forwarded = 0

    def wake(self, _payload: str | None = None) -> None:
        for loop in self._loops:
            loop.wake()

    async def run(self) -> None:
        await run_together(self._loops)

    def _loop(self, consumer: str, worker: int) -> Loop:
        async def step() -> float | None:
            if not await self._consumers[consumer].ready(self._poll_interval):
                raise ConnectionError(f"{consumer} is not reachable")
            forwarded, more = await self.drain_once(consumer)
            # Lanes another loop held during this cycle may have rows too: look again at
            # once rather than after the poll interval; an empty cycle is cheap.
            return AT_ONCE if more or forwarded else None

        def failed(_error: BaseException) -> None:
            if self._metrics:
                self._metrics.forward_failures.labels(consumer).inc()

        return Loop(f"outbox-{consumer}-{worker}", step, poll=self._poll_interval,
                    backoff=Backoff(maximum=self._max_backoff), on_failure=failed)

    async def drain_once(self, consumer: str) -> tuple[int, bool]:
        """One claim-forward-delete cycle: (items forwarded, whether more may be waiting).

        If a call fails, the calls before it are still committed as delivered, then the
        error is raised. Rows the consumer refuses as INVALID_ARGUMENT are set aside as
        dead letters, so one bad row cannot stall its lane forever.
        """
        send = self._consumers[consumer].send
        start = random.randrange(LANES)
        offered = [(start + i) % LANES for i in range(LANES)]
        began = time.perf_counter()
        delivered: list[int] = []
        refused: list[int] = []
        failure: Exception | None = None
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await store.claim(conn, consumer, offered, self.lanes_per_claim, self._batch_events)
            if not rows:
                return 0, False
            for call in group(rows):
                failure = await self._forward(consumer, send, call.app_id, call.kind, call.rows, delivered, refused)
                if failure is not None:
                    break
            if delivered:
                await store.delete_rows(conn, consumer, delivered)
            if refused:
                await store.dead_letter(conn, consumer, refused)
        items = {r["id"]: r["items"] for r in rows}
        forwarded = sum(items[i] for i in delivered)
        self.forwarded += forwarded
        if self._metrics:
            self._metrics.forwarded.labels(consumer).inc(forwarded)
            self._metrics.dead_lettered.labels(consumer).inc(sum(items[i] for i in refused))
            self._metrics.dispatch_latency.labels(consumer).observe(time.perf_counter() - began)
        if failure is not None:
            raise failure
        total = sum(items.values())
        return total, total >= self._batch_events

    async def _forward(self, consumer: str, send, app_id: str, kind: str, rows: list,
                       delivered: list[int], refused: list[int]) -> Exception | None:
        """Sends one call; appends its row ids to `delivered` or `refused`; returns the error
        that stops this cycle, if any. A refused call of several rows is retried row by row,
        so only the rows the consumer refuses on their own are set aside."""
        try:
            await send(app_id, kind, [r["payload"] for r in rows])
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                return exc
            if len(rows) > 1:
                for row in rows:
                    failure = await self._forward(consumer, send, app_id, kind, [row], delivered, refused)
                    if failure is not None:
                        return failure
                return None
            log.error("outbox_dead_lettered", consumer=consumer, app_id=app_id, kind=kind, row=rows[0]["id"],
                      items=rows[0]["items"], error=exc.details())
            refused.append(rows[0]["id"])
            return None
        except Exception as exc:  # noqa: BLE001 - keep what was delivered, then report
            return exc
        delivered.extend(r["id"] for r in rows)
        return None
