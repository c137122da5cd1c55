"""A transactional outbox dispatcher that keeps order per key (per user), across replicas.

A service writes outbox rows in the transaction of the change they announce, each with a
`shard` derived from its ordering key (`shard_of`). The dispatcher sends them at least once,
in id order within a shard: a shard is drained by one replica at a time (a transaction-level
advisory lock taken with try-lock, so replicas share the shards without waiting on each
other), and its rows are deleted only once the consumer has taken them, in the same
transaction.

Failures follow `nudgelib.isolation`: a consumer that is down keeps every row and the loop
backs off (nudgelib.loops); the next attempt starts again from the oldest row of the shard,
so a key's rows are never reordered. A failure that may be an item's splits the call down to
single rows: other users' rows go through, the failing user's later rows wait behind it, its
app is held back with a growing pause (its rows are not read meanwhile, so other apps' rows
in the same shard flow), and a row that fails alone `max_attempts` times moves to the
dead-letter table with its error (logged at warning, counted), after which the user's later
rows go on.

The table needs: id (bigserial), shard (integer), app_id (text), user_id (text), kind (text),
payload (bytea), created_at (timestamptz). The dead-letter table: id (bigserial), source_id
(bigint), shard, app_id, user_id, kind, payload, created_at, error (text), attempts (integer),
dead_at (timestamptz, default now()).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable

import asyncpg
import prometheus_client as prom

from nudgelib.dead_letters import fault_of, warn_dead
from nudgelib.isolation import Ledger, Policy, isolate
from nudgelib.loops import AT_ONCE, Backoff, Loop

# Sends the payloads of one run of rows of one app and kind; raises if not taken.
Sender = Callable[[str, str, list[bytes]], Awaitable[None]]


def shard_of(key: str, shards: int) -> int:
    """A stable shard for an ordering key (same in every process and language: crc32)."""
    return zlib.crc32(key.encode()) % shards


class OutboxMetrics:
    """Per outbox table: items taken, calls that failed, items set aside."""

    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.forwarded = prom.Counter("nudge_outbox_forwarded", "Outbox rows a consumer took", ["outbox"],
                                      registry=registry)
        self.failures = prom.Counter("nudge_outbox_failures", "Consumer calls of an outbox that failed",
                                     ["outbox"], registry=registry)
        self.dead_lettered = prom.Counter(
            "nudge_outbox_dead_lettered", "Outbox rows set aside after failing alone too often", ["outbox"],
            registry=registry)


class ShardedOutbox:
    def __init__(self, pool: asyncpg.Pool, table: str, send: Sender, shards: int, batch_size: int = 500,
                 max_request_bytes: int = 4 * 1024 * 1024, poll_interval: float = 1.0,
                 max_backoff: float = 10.0, *, dead_letters: str | None = None, policy: Policy = Policy(),
                 metrics: OutboxMetrics | None = None) -> None:
        self._pool = pool
        self._table = table
        self._dead_table = dead_letters or f"{table}_dead_letters"
        self._send = send
        self._shards = shards
        self._batch_size = batch_size
        self._max_request_bytes = max_request_bytes
        self._metrics = metrics
        self.ledger = Ledger(policy)
        self._loop = Loop(f"outbox-{table}", self._step, poll=poll_interval, backoff=Backoff(maximum=max_backoff))
        # Advisory locks are per database: the table name keeps two outboxes apart.
        self._lock_space = zlib.crc32(f"outbox:{table}".encode()) - 2**31

    def wake(self, _payload: str | None = None) -> None:
        self._loop.wake()

    async def run(self) -> None:
        await self._loop.run()

    async def _step(self) -> float | None:
        if await self.drain():
            return AT_ONCE  # a full batch: more is waiting
        held = self.ledger.held(time.monotonic())
        # Look again when the first held app may be tried.
        return min(self.ledger.policy.hold_initial, self.ledger.policy.hold_maximum) if held else None

    async def drain(self) -> bool:
        """One pass over the shards; true if some shard had more rows than one batch."""
        full = False
        for shard in range(self._shards):
            sent = await self.drain_shard(shard)
            full = full or sent == self._batch_size
        return full

    def _runs(self, rows: list[asyncpg.Record]) -> list[list[asyncpg.Record]]:
        """Consecutive rows of one app and kind, each run at most about `max_request_bytes`."""
        runs: list[list[asyncpg.Record]] = []
        size = 0
        for row in rows:
            if runs and (runs[-1][0]["app_id"], runs[-1][0]["kind"]) == (row["app_id"], row["kind"]) \
                    and size < self._max_request_bytes:
                runs[-1].append(row)
            else:
                runs.append([row])
                size = 0
            size += len(row["payload"])
        return runs

    async def drain_shard(self, shard: int) -> int:
        """Sends one batch of a shard; returns how many rows it read (0 if another replica
        holds it). Raises, after committing what was taken, when the consumer is down."""
        now = time.monotonic()
        held = self.ledger.held(now)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", self._lock_space, shard):
                return 0
            # Rows of held apps stay where they are, unread: their users' order is kept, and
            # the rows of other apps behind them in the shard are not held up.
            rows = await conn.fetch(
                f"SELECT id, app_id, user_id, kind, payload FROM {self._table}"
                " WHERE shard = $1 AND NOT (app_id = any($3::text[])) ORDER BY id LIMIT $2 FOR UPDATE",
                shard, self._batch_size, held)
            if not rows:
                return 0
            taken: list[int] = []
            dead: list[tuple[int, str]] = []
            failing: set[str] = set()
            down: BaseException | None = None
            for run in self._runs(rows):
                app_id, kind = run[0]["app_id"], run[0]["kind"]
                if app_id in failing:
                    continue  # behind a failed row of its app: waits, in order, for the next round

                async def send(items: list[asyncpg.Record], app_id: str = app_id, kind: str = kind) -> None:
                    await self._send(app_id, kind, [bytes(r["payload"]) for r in items])

                result = await isolate(run, send, self._fault_of, self.ledger,
                                       user_of=lambda r: r["user_id"], key_of=lambda r: (self._table, r["id"]))
                taken += [r["id"] for r in result.sent]
                dead += [(r["id"], error) for r, error in result.dead]
                for r, error in result.dead:
                    warn_dead(f"outbox-{self._table}", app_id, r["user_id"], error, kind=kind, row=r["id"],
                              attempts=self.ledger.policy.max_attempts)
                if result.down is not None:
                    down = result.down
                    break
                if result.failed or result.waiting:
                    failing.add(app_id)
                    self.ledger.hold(app_id, now)
                else:
                    self.ledger.release(app_id)
            if taken:
                await conn.execute(f"DELETE FROM {self._table} WHERE id = any($1::bigint[])", taken)
            if dead:
                await conn.execute(
                    f"""WITH moved AS (DELETE FROM {self._table} WHERE id = any($1::bigint[]) RETURNING *)
                        INSERT INTO {self._dead_table}
                            (source_id, shard, app_id, user_id, kind, payload, created_at, error, attempts)
                        SELECT m.id, m.shard, m.app_id, m.user_id, m.kind, m.payload, m.created_at, e.error, $3
                        FROM moved m JOIN unnest($1::bigint[], $2::text[]) AS e(id, error) ON e.id = m.id""",
                    [i for i, _ in dead], [e for _, e in dead], self.ledger.policy.max_attempts)
        if self._metrics:
            self._metrics.forwarded.labels(self._table).inc(len(taken))
            self._metrics.dead_lettered.labels(self._table).inc(len(dead))
        if down is not None:
            raise down
        return len(rows)

    def _fault_of(self, exc: BaseException):
        if self._metrics:
            self._metrics.failures.labels(self._table).inc()
        return fault_of(exc)
