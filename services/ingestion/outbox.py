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
other: its rows wait (and count toward their apps' backpressure) until it is back.

A call that fails for what may be an item (nudgelib.isolation: any status but those of a
consumer down) is split into its items, down to single ones, so that the other users' items
go through; the app is then held back with a growing pause, its rows left unread at the head
of their lanes, while every other app's rows flow. An item that fails alone
NUDGE_DEAD_LETTER_AFTER_ATTEMPTS times moves to `dead_letters` with its error (logged at
warning, counted in nudge_ingestion_outbox_dead_lettered_total). Per-user order: a user's
later items wait behind their failing item while it is retried, and go on, in order, once it
is forwarded or set aside.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass, field

import asyncpg
import structlog

from nudgelib.dead_letters import FailureSettings, fault_of, warn_dead
from nudgelib.isolation import Fault, Ledger, isolate
from nudgelib.loops import AT_ONCE, Backoff, Loop, run_together
from services.ingestion import framing, store
from services.ingestion.consumers import Consumer
from services.ingestion.grouping import group
from services.ingestion.keys import LANES
from services.ingestion.metrics import IngestionMetrics

log = structlog.get_logger(__name__)


class OutboxDispatcher:
    def __init__(self, pool: asyncpg.Pool, consumers: dict[str, Consumer], metrics: IngestionMetrics | None = None,
                 *, workers: int = 2, batch_events: int = 4000, poll_interval: float = 1.0,
                 max_backoff: float = 5.0, failures: FailureSettings = FailureSettings()) -> None:
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
        # Per consumer: attempts of failing items, holds of failing apps (nudgelib.isolation).
        self.ledgers = {c: Ledger(failures.policy()) for c in consumers}
        # Items this dispatcher has had acknowledged, and set aside (also in metrics).
        self.forwarded = 0
        self.dead_lettered = 0

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

        If the consumer is down, the calls before are still committed as delivered, then the
        error is raised. A call that fails otherwise is split (see the module's docstring).
        """
        send = self._consumers[consumer].send
        ledger = self.ledgers[consumer]
        now = time.monotonic()
        start = random.randrange(LANES)
        offered = [(start + i) % LANES for i in range(LANES)]
        began = time.perf_counter()
        delivered: list[int] = []
        dead: list[store.DeadItem] = []
        remaining: list[store.Remaining] = []
        split_sent = 0
        split_rows: set[int] = set()
        failing: set[str] = set()
        down: BaseException | None = None
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await store.claim(conn, consumer, offered, self.lanes_per_claim, self._batch_events,
                                     ledger.held(now))
            if not rows:
                return 0, False
            for call in group(rows):
                if call.app_id in failing:
                    continue  # behind a failed item of its app: waits, in order, for the next round
                try:
                    await send(call.app_id, call.kind, [r["payload"] for r in call.rows])
                except Exception as exc:  # noqa: BLE001 - fault_of raises again what is a bug here
                    if fault_of(exc)[0] is Fault.DOWN:
                        down = exc  # counted by the loop's on_failure when raised
                        break
                    if self._metrics:
                        self._metrics.forward_failures.labels(consumer).inc()
                    outcome = await self._split(conn, consumer, send, call, exc)
                    split_rows.update(r["id"] for r in call.rows)
                    dead += outcome.dead
                    remaining += outcome.remaining
                    delivered += outcome.emptied
                    split_sent += outcome.sent
                    if outcome.down is not None:
                        down = outcome.down
                        break
                    if outcome.waiting:
                        failing.add(call.app_id)
                        ledger.hold(call.app_id, now)
                    continue
                delivered.extend(r["id"] for r in call.rows)
                ledger.release(call.app_id)
            if dead or remaining:
                await store.settle_split(conn, consumer, remaining, dead, ledger.policy.max_attempts)
            if delivered:
                await store.delete_rows(conn, consumer, delivered)
        items = {r["id"]: r["items"] for r in rows}
        forwarded = sum(items[i] for i in delivered if i not in split_rows) + split_sent
        self.forwarded += forwarded
        self.dead_lettered += len(dead)
        if self._metrics:
            self._metrics.forwarded.labels(consumer).inc(forwarded)
            self._metrics.dead_lettered.labels(consumer).inc(len(dead))
            self._metrics.dispatch_latency.labels(consumer).observe(time.perf_counter() - began)
        for d in dead:
            warn_dead(f"outbox-{consumer}", rows_app(rows, d.row_id), d.user_id, d.error, row=d.row_id,
                      attempts=ledger.policy.max_attempts)
        if down is not None:
            raise down
        total = sum(items.values())
        return total, total >= self._batch_events

    async def _split(self, conn, consumer: str, send, call, failure: BaseException) -> "_Split":
        """Sends a failed call's items again in smaller calls (nudgelib.isolation.isolate) and
        says what became of each of its rows."""
        users = await store.users_of(conn, consumer, [r["id"] for r in call.rows])
        items: list[_Item] = []
        for row in call.rows:
            framed = framing.split_items(bytes(row["payload"]))
            owners = users.get(row["id"], [])
            if len(owners) != len(framed):  # not expected; the row then stands for one user
                owners = [owners[0] if owners else ""] * len(framed)
            items += [_Item(row["id"], n, owners[n], f) for n, f in enumerate(framed)]

        async def resend(part: list[_Item]) -> None:
            await send(call.app_id, call.kind, [i.framed for i in part])

        def counted_fault(exc: BaseException):
            if self._metrics and exc is not failure:
                self._metrics.forward_failures.labels(consumer).inc()
            return fault_of(exc)

        result = await isolate(items, resend, counted_fault, self.ledgers[consumer],
                               user_of=lambda i: i.user_id, key_of=lambda i: (i.row_id, _digest(i.framed)),
                               tried=failure)
        out = _Split(sent=len(result.sent), down=result.down, waiting=len(result.waiting))
        out.dead = [store.DeadItem(i.row_id, i.framed, i.user_id, error) for i, error in result.dead]
        waiting: dict[int, list[_Item]] = {}
        for i in result.waiting:
            waiting.setdefault(i.row_id, []).append(i)
        for row in call.rows:
            left = sorted(waiting.get(row["id"], []), key=lambda i: i.index)
            if not left:
                out.emptied.append(row["id"])
            elif len(left) < row["items"]:
                out.remaining.append(store.Remaining(row["id"], b"".join(i.framed for i in left),
                                                     [i.user_id for i in left]))
        return out


@dataclass(frozen=True)
class _Item:
    row_id: int
    index: int
    user_id: str
    framed: bytes


@dataclass
class _Split:
    sent: int
    down: BaseException | None
    waiting: int
    dead: list[store.DeadItem] = field(default_factory=list)
    remaining: list[store.Remaining] = field(default_factory=list)
    emptied: list[int] = field(default_factory=list)  # rows with nothing left to send


def _digest(framed: bytes) -> bytes:
    return hashlib.blake2b(framed, digest_size=16).digest()


def rows_app(rows, row_id: int) -> str:
    return next(r["app_id"] for r in rows if r["id"] == row_id)
