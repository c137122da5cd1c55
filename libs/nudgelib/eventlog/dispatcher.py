"""Reads a log table and forwards its items to each consumer: at least once, in position order
per lane, across any number of replicas; applied once by the consumer (`positions`).

**Claims.** Each consumer has its own loops. A loop claims lanes that have work with
transaction-level advisory try-locks (one loop at a time per consumer and lane, across every
replica; a crashed replica's locks go with its connection), reads each lane from that
consumer's cursor up to the horizon (`horizon`: nothing below it can still commit), forwards,
moves the cursors and commits, which releases the lanes. The rows are read by a statement
after the locks are held, so a loop never reads a cursor older than the last commit on it.

**Batches.** At most `batch_items` items and about `batch_bytes` bytes are read per cycle,
split evenly between the claimed lanes, as runs (consecutive items of one app and kind)
framed in SQL, so forwarding costs no work per item unless a consumer refuses one. Runs become
as few calls as the per-lane order
allows (`grouping.group`: one app and kind per call), each call at most `call_items` items
and about `call_bytes` bytes.

**Failures** (`nudgelib.isolation`). A consumer that is down stops the cycle: what was taken
is committed, the rest waits for the next try, with backoff. A call refused otherwise is split
to find the item refused; the items before it are forwarded, and its app is **held** in its
lane from that item on (`holds` table): the lane's cursor goes on with every other app's items,
and the held app's items, from the refused one up to the cursor, are retried in order with a
growing pause. An item refused `max_attempts` times in a row is set aside in the dead-letter
table with the consumer's last error, and the app's later items go on. So a failing item
holds back only its own app's users of one lane, and never another app. The hold is gone once
the app has caught up with the cursor.

**Traces** (only with tracing on, `nudgelib.tracing`). Each call to a consumer is a span,
linked to the spans of the transactions that wrote its items when the producer stores their
trace contexts (`LogSpec.traces`, `traces`: one query per cycle); the consumer's span is its
child. Off, a cycle runs no extra statement and makes no span.

The table shapes (names from `LogSpec`):
- the log: `lane smallint, position bigint, app_id text, user_id text, kind smallint,
  payload bytea`, and a timestamptz (`time_column`); an index on (lane, position);
- cursors: `consumer text, lane smallint, position bigint`, a row per consumer and lane;
- holds: `consumer, lane, app_id, from_position bigint, attempts integer, next_try
  timestamptz, error text, since timestamptz`, keyed by (consumer, lane, app_id);
- dead letters: `consumer, lane, app_id, kind text, items integer, user_ids text[], payload,
  created_at, error, attempts, position`;
- and the function `pb_item_header(integer) -> bytea` in the schema (the producers' migrations).
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog
from opentelemetry.trace import SpanContext

from nudge.common.v1 import common_pb2
from nudgelib.dead_letters import fault_of, warn_dead
from nudgelib.eventlog import traces
from nudgelib.eventlog.framing import frame_item, split_items
from nudgelib.eventlog.grouping import group
from nudgelib.eventlog.horizon import SharedHorizon
from nudgelib.eventlog.metrics import LogMetrics
from nudgelib.isolation import Fault, Policy, isolate
from nudgelib.loops import AT_ONCE, Backoff, Loop, run_together
from nudgelib.tracing import Tracing

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LogSpec:
    """A producer's log and the tables its readers keep their state in."""

    source: str  # what consumers key their positions by
    table: str
    time_column: str  # when an item was written: ages, dead letters
    lanes: int
    gate: tuple[int, int]  # the writers' shared advisory lock (horizon)
    lock_class: int  # lane claims lock (lock_class + consumer index, lane)
    kinds: dict[int, str]
    consumers: tuple[str, ...]
    cursors: str = "log_cursors"
    holds: str = "log_holds"
    dead_letters: str = "dead_letters"
    # A queue rather than a log kept for its own sake (an outbox of one consumer): items the
    # consumer has taken are deleted in the cycle that took them.
    delete_taken: bool = False
    # The table of the producers' trace contexts, one row per writing transaction (with
    # tracing on; `traces`), or None if the producer keeps none.
    traces: str | None = None

    def lane_lock(self, consumer: str) -> int:
        return self.lock_class + self.consumers.index(consumer)


@dataclass(eq=False)
class Run:
    """Consecutive items of one lane, app and kind, as a reader forwards them: their positions,
    users and times, and the items themselves already framed as one piece of bytes
    (`framing`), so a run costs the reader no work per item unless a consumer refuses it."""

    lane: int
    app_id: str
    kind: int
    positions: list[int]
    users: list[str]
    framed: bytes

    def __getitem__(self, key: str):  # grouping.group reads rows by key
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def first(self) -> int:
        return self.positions[0]

    @property
    def last(self) -> int:
        return self.positions[-1]

    def payloads(self) -> list[bytes]:
        return split_items(self.framed)

    def items(self) -> list["Run"]:
        """The run as runs of one item each (to find the one a consumer refuses)."""
        if len(self.positions) == 1:
            return [self]
        return [Run(self.lane, self.app_id, self.kind, [p], [u], frame_item(payload))
                for p, u, payload in zip(self.positions, self.users, self.payloads())]

    @property
    def user_id(self) -> str:  # of a one-item run
        return self.users[0]

    @property
    def position(self) -> int:  # of a one-item run
        return self.positions[0]


@dataclass(frozen=True)
class Target:
    """A consumer as the reader uses it: which kinds it takes, how one call is sent (runs of one
    app and one kind; raises if not taken), and whether it is reachable."""

    name: str
    kinds: tuple[int, ...]
    send: Callable[[str, int, list[Run]], Awaitable[None]]
    ready: Callable[[float], Awaitable[bool]]


def span_of(source: str, runs: list[Run]) -> common_pb2.LogSpan:
    """Where the runs' items sit in the log, for a consumer that applies each once by position."""
    span = common_pb2.LogSpan(source=source)
    for run in runs:
        span.lanes.extend([run.lane] * len(run.positions))
        span.positions.extend(run.positions)
    return span


async def lock_lane(conn: asyncpg.Connection, spec: LogSpec, lane: int) -> None:
    """Within a transaction: waits for every consumer's reader of the lane to finish, and keeps
    them out until it ends (erasure)."""
    await conn.execute("SELECT pg_advisory_xact_lock(k, $1) FROM unnest($2::int[]) AS k",
                       lane, [spec.lane_lock(c) for c in spec.consumers])


def _claim_sql(spec: LogSpec) -> str:
    # Only lanes with something to do are locked (OFFSET 0 keeps that test before the lock): a
    # loop woken for a new item must not spend its claim on empty lanes.
    return f"""
SELECT coalesce(array_agg(l), '{{}}') FROM (
    SELECT l FROM (
        SELECT c.lane AS l FROM {spec.cursors} c
        WHERE c.consumer = $2 AND c.lane = any($3::smallint[])
          AND (EXISTS (SELECT 1 FROM {spec.table} e WHERE e.lane = c.lane AND e.position > c.position
                         AND e.position < $1 AND e.kind = any($4::smallint[]))
               OR EXISTS (SELECT 1 FROM {spec.holds} h WHERE h.consumer = $2 AND h.lane = c.lane
                            AND h.next_try <= now()))
        ORDER BY array_position($3::smallint[], c.lane) OFFSET 0
    ) AS busy WHERE pg_try_advisory_xact_lock($5, l) LIMIT $6
) AS locked
"""


# A lane is read from its cursor in position order, a batch at a time, which the (lane, position)
# index gives directly. The cursor is a parameter the planner cannot see, so its estimate of the
# rows past it is a guess (62 of 200,000 in one run); on a guess that low it may prefer a bitmap
# scan, which reads every row past the cursor and sorts them to keep the first batch: with a
# backlog of 12,000 items per lane, 8 times the work of the whole read (measured with EXPLAIN
# ANALYZE on the ingestion bench's log). A reader's transaction therefore never scans by bitmap.
_INDEX_ORDER = "SET LOCAL enable_bitmapscan = off"


def _runs_of(items: str) -> str:
    """SQL folding `items` (a FROM item `x` with lane, position, app_id, user_id, kind, payload)
    into runs: consecutive items of one app and kind, framed in SQL. One window order, the
    lane's position order the items come in: an item whose app or kind differs from the one
    before starts a run, and the running count of starts numbers them."""
    return f"""
    SELECT g.lane, g.app_id, g.kind, array_agg(g.position ORDER BY g.position) AS positions,
           array_agg(g.user_id ORDER BY g.position) AS users,
           string_agg(pb_item_header(length(g.payload)) || g.payload, ''::bytea ORDER BY g.position) AS framed
    FROM (SELECT s.*, sum(s.starts) OVER (PARTITION BY s.lane ORDER BY s.position) AS run
          FROM (SELECT x.*, CASE WHEN (x.app_id, x.kind) IS NOT DISTINCT FROM
                                      (lag(x.app_id) OVER w, lag(x.kind) OVER w) THEN 0 ELSE 1 END AS starts
                FROM {items} WINDOW w AS (PARTITION BY x.lane ORDER BY x.position)) AS s) AS g
    GROUP BY g.lane, g.run, g.app_id, g.kind"""


def _read_sql(spec: LogSpec) -> str:
    # Each claimed lane from its cursor, at most $5 items and about $6 bytes of it, as runs.
    items = f"""(
        SELECT y.*, sum(length(y.payload)) OVER (PARTITION BY y.lane ORDER BY y.position) AS upto
        FROM {spec.cursors} c CROSS JOIN LATERAL (
            SELECT lane, position, app_id, user_id, kind, payload FROM {spec.table}
            WHERE lane = c.lane AND position > c.position AND position < $3 AND kind = any($4::smallint[])
            ORDER BY position LIMIT $5
        ) AS y
        WHERE c.consumer = $1 AND c.lane = any($2::smallint[])
    ) AS x WHERE x.upto - length(x.payload) < $6"""
    return f"SELECT * FROM ({_runs_of(items)}) AS r ORDER BY r.lane, r.positions[1]"


def _cursors_sql(spec: LogSpec) -> str:
    return f"SELECT lane, position FROM {spec.cursors} WHERE consumer = $1 AND lane = any($2::smallint[])"


def _held_sql(spec: LogSpec) -> str:
    # The items of held apps, from the held one up to the lane's cursor, as runs.
    items = f"""(
        SELECT e.* FROM unnest($1::smallint[], $2::text[], $3::bigint[], $4::bigint[])
            AS h(lane, app_id, from_position, upto)
        CROSS JOIN LATERAL (
            SELECT lane, position, app_id, user_id, kind, payload FROM {spec.table}
            WHERE lane = h.lane AND app_id = h.app_id AND position >= h.from_position AND position <= h.upto
              AND kind = any($5::smallint[])
            ORDER BY position LIMIT $6
        ) AS e
    ) AS x"""
    return f"SELECT * FROM ({_runs_of(items)}) AS r ORDER BY r.lane, r.app_id, r.positions[1]"


@dataclass
class _Hold:
    lane: int
    app_id: str
    from_position: int
    attempts: int
    due: bool
    error: str = ""
    delay: float = 0.0  # seconds from now to the next try
    gone: bool = False  # caught up: delete


@dataclass
class _Cycle:
    """What one claim-forward-commit cycle did, written at its end."""

    sent: set[int] = field(default_factory=set)  # id() of each run taken whole or in part
    sent_items: set[tuple[int, int]] = field(default_factory=set)  # (lane, position) of parts taken
    forwarded: int = 0
    holds: dict[tuple[int, str], _Hold] = field(default_factory=dict)
    dead: list[tuple[Run, str, int]] = field(default_factory=list)  # one-item run, error, attempts
    # With tracing on: the producers' span contexts, by writing transaction (`traces`).
    producers: dict[int, SpanContext] = field(default_factory=dict)
    down: BaseException | None = None
    failures: int = 0

    def taken(self, run: Run) -> None:
        self.sent.add(id(run))
        self.forwarded += len(run)
        if len(run) == 1:  # perhaps a piece of a run too big for one call
            self.sent_items.add((run.lane, run.position))


class LogDispatcher:
    def __init__(self, pool: asyncpg.Pool, spec: LogSpec, targets: Sequence[Target],
                 metrics: LogMetrics | None = None, *,
                 workers: int = 2, batch_items: int = 4000, batch_bytes: int = 8 << 20, call_items: int = 4000,
                 call_bytes: int = 4 << 20, poll_interval: float = 1.0, max_backoff: float = 5.0,
                 policy: Policy = Policy(), horizon_max_age: float = 0.005, tracing: Tracing | None = None) -> None:
        self._pool = pool
        # With tracing on, each call to a consumer is a span linked to its items' producers.
        self._tracing = tracing
        self.spec = spec
        self._targets = {t.name: t for t in targets}
        self._metrics = metrics
        self._batch_items = batch_items
        self._batch_bytes = batch_bytes
        self._call_items = call_items
        self._call_bytes = call_bytes
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self.policy = policy
        # Each loop claims at most its share of the lanes, so the loops of a process (and of
        # several replicas) split the lanes rather than one taking them all.
        self.lanes_per_claim = math.ceil(spec.lanes / workers)
        self._claim, self._read, self._held = _claim_sql(spec), _read_sql(spec), _held_sql(spec)
        self._cursors_sql = _cursors_sql(spec)
        self._horizon = SharedHorizon(pool, spec.gate, horizon_max_age)
        self._loops = [self._loop(t, i) for t in targets for i in range(workers)]
        self._counted: dict[str, int] = {}  # the last backlog count
        # Items this dispatcher has had taken, and set aside (also in metrics).
        self.forwarded = 0
        self.dead_lettered = 0

    def wake(self, _payload: str | None = None) -> None:
        self._horizon.advance()
        for loop in self._loops:
            loop.wake()

    async def measure_backlog(self, cap: int = 1_000_000, count: bool = True) -> tuple[dict[str, int], dict[str, float]]:
        """Per consumer: items waiting (counted up to `cap`; without `count`, the last count)
        and the oldest one's age in seconds, also published as gauges."""
        kinds = {t.name: t.kinds for t in self._targets.values()}
        ages = await backlog_ages(self._pool, self.spec, kinds)
        if count or not self._counted:
            self._counted = await backlog_counts(self._pool, self.spec, kinds, cap)
        if self._metrics:
            for consumer, items in self._counted.items():
                self._metrics.backlog(consumer, items, ages[consumer])
        return dict(self._counted), ages

    async def run_backlog_gauges(self, interval: float = 5.0) -> None:
        """Keeps the backlog gauges fresh (for logs that no backpressure monitor reads)."""
        async def step() -> None:
            await self.measure_backlog()

        await Loop(f"log-{self.spec.table}-backlog", step, poll=interval, backoff=Backoff.steady(interval)).run()

    async def run(self) -> None:
        loops = list(self._loops)
        if self.spec.traces is not None:
            async def sweep() -> None:
                await traces.sweep(self._pool, self.spec.traces)

            loops.append(Loop(f"log-{self.spec.table}-traces", sweep, poll=traces.SWEEP_INTERVAL,
                              backoff=Backoff.steady(traces.SWEEP_INTERVAL)))
        await run_together(loops)

    def _loop(self, target: Target, worker: int) -> Loop:
        async def step() -> float | None:
            if not await target.ready(self._poll_interval):
                raise ConnectionError(f"{target.name} is not reachable")
            forwarded, more = await self.drain_once(target.name)
            # Lanes another loop held during this cycle may have items too: look again at
            # once rather than after the poll interval; an empty cycle is cheap.
            return AT_ONCE if more or forwarded else None

        def failed(_error: BaseException) -> None:
            if self._metrics:
                self._metrics.failed(target.name)

        return Loop(f"log-{self.spec.table}-{target.name}-{worker}", step, poll=self._poll_interval,
                    backoff=Backoff(maximum=self._max_backoff), on_failure=failed)

    async def drain_once(self, consumer: str) -> tuple[int, bool]:
        """One cycle for one consumer: (items read, whether more may be waiting). Raises, after
        committing what was taken, when the consumer is down."""
        target = self._targets[consumer]
        spec = self.spec
        start = random.randrange(spec.lanes)
        offered = [(start + i) % spec.lanes for i in range(spec.lanes)]
        began = time.perf_counter()
        cycle = _Cycle()
        # Read before this transaction's statements (any horizon read earlier holds), and
        # outside it: it takes a connection of its own.
        below = await self._horizon.get()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_INDEX_ORDER)
            lanes = await conn.fetchval(self._claim, below, consumer, offered, list(target.kinds),
                                        spec.lane_lock(consumer), self.lanes_per_claim)
            if not lanes:
                return 0, False
            per_lane = max(1, -(-self._batch_items // len(lanes)))
            cursors = {r["lane"]: r["position"] for r in await conn.fetch(self._cursors_sql, consumer, lanes)}
            runs = [_run(r) for r in await conn.fetch(self._read, consumer, lanes, below, list(target.kinds),
                                                      per_lane, max(1, self._batch_bytes // len(lanes)))]
            if self._tracing is not None:
                await self._find_producers(conn, runs, cycle)
            for h in await conn.fetch(
                    f"SELECT lane, app_id, from_position, attempts, next_try <= now() AS due FROM {spec.holds}"
                    " WHERE consumer = $1 AND lane = any($2::smallint[])", consumer, lanes):
                cycle.holds[(h["lane"], h["app_id"])] = _Hold(h["lane"], h["app_id"], h["from_position"],
                                                              h["attempts"], h["due"])
            due = [h for h in cycle.holds.values() if h.due]
            await self._forward(target, runs, cycle)
            moved = _cursors(runs, cursors, cycle)
            if due and cycle.down is None:
                await self._retry_held(conn, target, due, {**cursors, **moved}, per_lane, cycle)
            await self._commit(conn, consumer, moved, cycle)
        self.forwarded += cycle.forwarded
        self.dead_lettered += len(cycle.dead)
        if self._metrics:
            self._metrics.cycle(consumer, cycle.forwarded, cycle.failures, len(cycle.dead),
                                time.perf_counter() - began)
        for item, error, attempts in cycle.dead:
            warn_dead(f"log-{spec.table}-{consumer}", item.app_id, item.user_id, error, lane=item.lane,
                      position=item.position, attempts=attempts)
        if cycle.down is not None:
            raise cycle.down
        read = sum(len(r) for r in runs)
        again = any(not h.gone and h.delay == 0 for h in due)  # a held app with more to send now
        return read, read >= per_lane * len(lanes) or again

    def _calls(self, runs: list[Run]) -> list[tuple[str, int, list[Run]]]:
        """Calls of one app and kind, in an order that keeps each lane's order, each at most
        `call_items` items and about `call_bytes` bytes (a run bigger than that alone is sent
        item by item)."""
        out = []
        for call in group(runs):
            part: list[Run] = []
            items = size = 0
            for run in call.rows:
                pieces = [run] if len(run) <= self._call_items and len(run.framed) <= self._call_bytes \
                    else run.items()
                for piece in pieces:
                    if part and (items + len(piece) > self._call_items or size + len(piece.framed) > self._call_bytes):
                        out.append((call.app_id, call.kind, part))
                        part, items, size = [], 0, 0
                    part.append(piece)
                    items += len(piece)
                    size += len(piece.framed)
            out.append((call.app_id, call.kind, part))
        return out

    async def _send(self, target: Target, app_id: str, kind: int, runs: list[Run], cycle: _Cycle) -> None:
        """One call to the consumer; with tracing on, in a span linked to the spans that wrote
        its items (the consumer's span is this one's child)."""
        if self._tracing is None:
            await target.send(app_id, kind, runs)
            return
        links = traces.links_of(cycle.producers, (p for run in runs for p in run.positions))
        with self._tracing.span(f"{self.spec.source} log to {target.name}", links,
                                **{"nudge.app_id": app_id, "nudge.log.kind": self.spec.kinds[kind],
                                   "nudge.log.items": sum(len(r) for r in runs),
                                   "nudge.log.producers": len(links)}):
            await target.send(app_id, kind, runs)

    async def _find_producers(self, conn: asyncpg.Connection, runs: list[Run], cycle: _Cycle) -> None:
        if self.spec.traces is not None and runs:
            cycle.producers.update(await traces.contexts(conn, self.spec.traces,
                                                         (p for run in runs for p in run.positions)))

    async def _send_all(self, target: Target, runs: list[Run], cycle: _Cycle) -> dict[tuple[int, str], tuple[Run, str]]:
        """Sends runs of one or more apps in calls; returns, per (lane, app) stopped by a
        refused item, that item (a one-item run) and the error. Sets `cycle.down` and stops
        when the consumer is down."""
        stopped: dict[tuple[int, str], tuple[Run, str]] = {}
        for app_id, kind, part in self._calls(runs):
            if cycle.down is not None:
                break
            part = [r for r in part if (r.lane, app_id) not in stopped and (r.lane, app_id) not in cycle.holds]
            if not part:
                continue
            try:
                await self._send(target, app_id, kind, part, cycle)
            except Exception as exc:  # noqa: BLE001 - fault_of raises again what is a bug here
                cycle.failures += 1
                if fault_of(exc)[0] is Fault.DOWN:
                    cycle.down = exc
                    break
                stopped.update(await self._isolate(target, app_id, kind, part, exc, cycle))
                continue
            for run in part:
                cycle.taken(run)
        return stopped

    async def _isolate(self, target: Target, app_id: str, kind: int, part: list[Run], failure: BaseException,
                       cycle: _Cycle) -> dict[tuple[int, str], tuple[Run, str]]:
        """A refused call, item by item: halves are sent again down to the refused item, which
        stops its lane (the later items of the lane wait behind it) while the call's other
        lanes go on. Attempts are counted by the hold, not here."""
        async def send(items: list[Run]) -> None:
            await self._send(target, app_id, kind, items, cycle)

        def counted(exc: BaseException):
            if exc is not failure:
                cycle.failures += 1
            return fault_of(exc)

        items = [i for run in part for i in run.items()]
        result = await isolate(items, send, counted, None, user_of=lambda i: i.lane, tried=failure)
        for item in result.sent:
            cycle.sent_items.add((item.lane, item.position))
            cycle.forwarded += 1
        if result.down is not None:
            cycle.down = result.down
        return {(refused.lane, app_id): (refused, result.error) for refused in result.failures}

    async def _forward(self, target: Target, runs: list[Run], cycle: _Cycle) -> None:
        """The main path: the lanes' new items, but those of held apps (their hold covers them)."""
        stopped = await self._send_all(target, [r for r in runs if (r.lane, r.app_id) not in cycle.holds], cycle)
        for (lane, app_id), (item, error) in stopped.items():
            cycle.holds[(lane, app_id)] = _Hold(lane, app_id, item.position, 1, False, error,
                                                self.policy.hold(1))

    async def _retry_held(self, conn: asyncpg.Connection, target: Target, due: list[_Hold],
                          cursors: dict[int, int], limit: int, cycle: _Cycle) -> None:
        """Held apps whose pause is over: their items from the held one up to the (moved)
        cursor, in order. Caught up: the hold goes; refused again: a longer pause, or the
        item is set aside once it has failed `max_attempts` times in a row."""
        rows = await conn.fetch(self._held, [h.lane for h in due], [h.app_id for h in due],
                                [h.from_position for h in due], [cursors[h.lane] for h in due],
                                list(target.kinds), limit)
        by_hold: dict[tuple[int, str], list[Run]] = defaultdict(list)
        for r in rows:
            by_hold[(r["lane"], r["app_id"])].append(_run(r))
        if self._tracing is not None:
            await self._find_producers(conn, [run for runs in by_hold.values() for run in runs], cycle)
        for hold in due:
            key = (hold.lane, hold.app_id)
            held = by_hold.get(key, [])
            positions = [p for run in held for p in run.positions]
            del cycle.holds[key]  # sent as if not held; put back below unless caught up
            stopped = await self._send_all(target, held, cycle)
            if cycle.down is not None:
                unsent = [p for run in held if id(run) not in cycle.sent for p in run.positions
                          if (run.lane, p) not in cycle.sent_items]
                if unsent:
                    hold.from_position = unsent[0]
                cycle.holds[key] = hold
                return
            if key not in stopped:
                if len(positions) < limit:
                    hold.gone = True
                else:
                    hold.from_position, hold.attempts, hold.delay = positions[-1] + 1, 0, 0.0
                cycle.holds[key] = hold
                continue
            item, error = stopped[key]
            attempts = hold.attempts + 1 if positions and item.position == positions[0] else 1
            if attempts >= self.policy.max_attempts:
                cycle.dead.append((item, error, attempts))
                hold.from_position, hold.attempts, hold.delay, hold.error = item.position + 1, 0, 0.0, error
            else:
                hold.from_position, hold.attempts, hold.error = item.position, attempts, error
                hold.delay = self.policy.hold(attempts)
            cycle.holds[key] = hold

    async def _commit(self, conn: asyncpg.Connection, consumer: str, moved: dict[int, int], cycle: _Cycle) -> None:
        """Within the cycle's transaction: cursors, holds and dead letters, one statement each."""
        spec = self.spec
        if cycle.dead:  # first: a queue's taken items are deleted below
            await conn.execute(
                f"""INSERT INTO {spec.dead_letters} (consumer, lane, app_id, kind, items, user_ids, payload,
                                                    created_at, error, attempts, position)
                    SELECT $1, t.lane, t.app_id, t.kind, 1, ARRAY[t.user_id], t.payload,
                           coalesce((SELECT e.{spec.time_column} FROM {spec.table} e
                                     WHERE e.lane = t.lane AND e.position = t.position LIMIT 1), now()),
                           t.error, t.attempts, t.position
                    FROM unnest($2::smallint[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::text[],
                                $8::int[], $9::bigint[])
                        AS t(lane, app_id, kind, user_id, payload, error, attempts, position)""",
                consumer, *zip(*[(i.lane, i.app_id, spec.kinds[i.kind], i.user_id, i.payloads()[0], error,
                                  attempts, i.position) for i, error, attempts in cycle.dead]))
        if moved:
            await conn.execute(
                f"UPDATE {spec.cursors} c SET position = t.position"
                " FROM unnest($2::smallint[], $3::bigint[]) AS t(lane, position)"
                " WHERE c.consumer = $1 AND c.lane = t.lane",
                consumer, list(moved), list(moved.values()))
        gone = [h for h in cycle.holds.values() if h.gone]
        kept = [h for h in cycle.holds.values() if not h.gone and (h.due or h.error)]
        if gone:
            await conn.execute(
                f"DELETE FROM {spec.holds} h USING unnest($2::smallint[], $3::text[]) AS t(lane, app_id)"
                " WHERE h.consumer = $1 AND h.lane = t.lane AND h.app_id = t.app_id",
                consumer, [h.lane for h in gone], [h.app_id for h in gone])
        if kept:
            await conn.execute(
                f"""INSERT INTO {spec.holds} AS h (consumer, lane, app_id, from_position, attempts, next_try, error)
                    SELECT $1, t.lane, t.app_id, t.from_position, t.attempts,
                           now() + t.delay * interval '1 second', t.error
                    FROM unnest($2::smallint[], $3::text[], $4::bigint[], $5::int[], $6::float8[], $7::text[])
                        AS t(lane, app_id, from_position, attempts, delay, error)
                    ON CONFLICT (consumer, lane, app_id) DO UPDATE SET
                        from_position = excluded.from_position, attempts = excluded.attempts,
                        next_try = excluded.next_try,
                        error = CASE WHEN excluded.error = '' THEN h.error ELSE excluded.error END""",
                consumer, [h.lane for h in kept], [h.app_id for h in kept], [h.from_position for h in kept],
                [h.attempts for h in kept], [h.delay for h in kept], [h.error for h in kept])
        if spec.delete_taken and (moved or cycle.holds or cycle.dead):
            # Everything up to each claimed lane's cursor, but what holds still cover (read
            # after the holds are written, in this transaction).
            await conn.execute(
                f"""DELETE FROM {spec.table} t USING {spec.cursors} c
                    WHERE c.consumer = $1 AND c.lane = any($2::smallint[]) AND t.lane = c.lane
                      AND t.position <= c.position
                      AND NOT EXISTS (SELECT 1 FROM {spec.holds} h WHERE h.consumer = $1 AND h.lane = t.lane
                                        AND h.app_id = t.app_id AND t.position >= h.from_position)""",
                consumer, sorted({*moved, *(h.lane for h in cycle.holds.values())}))


def _run(r: asyncpg.Record) -> Run:
    return Run(r["lane"], r["app_id"], r["kind"], r["positions"], r["users"], bytes(r["framed"]))


def _cursors(runs: list[Run], cursors: dict[int, int], cycle: _Cycle) -> dict[int, int]:
    """Per lane, the new cursor: past the longest run of items taken, or covered by a hold of
    their app (held from an earlier position, so its retries will bring them)."""
    moved: dict[int, int] = {}
    blocked: set[int] = set()
    for run in runs:  # in (lane, position) order
        if run.lane in blocked:
            continue
        hold = cycle.holds.get((run.lane, run.app_id))
        if id(run) in cycle.sent or (hold is not None and hold.from_position <= run.first):
            moved[run.lane] = run.last
            continue
        for position in run.positions:  # taken in part (or not at all)
            if (run.lane, position) in cycle.sent_items or (hold is not None and hold.from_position <= position):
                moved[run.lane] = position
            else:
                blocked.add(run.lane)
                break
    return {lane: p for lane, p in moved.items() if p > cursors.get(lane, -1)}


# ---------------------------------------------------------------- backlog


def _kind_arrays(kinds: dict[str, tuple[int, ...]]) -> list[str]:
    return ["{" + ",".join(map(str, v)) + "}" for v in kinds.values()]


_CONSUMER_KINDS = """k AS (
    SELECT n.consumer, ($2::text[])[n.i]::smallint[] AS kinds FROM unnest($1::text[]) WITH ORDINALITY AS n(consumer, i)
)"""


def _waiting_sql(spec: LogSpec, consumer: str, kinds: str, cap: str) -> str:
    """SQL of the items waiting for a consumer, at most `cap` of them: those after its cursors,
    and those of apps held in a lane (from the held item up to the cursor)."""
    return f"""(
        SELECT x.app_id, x.at FROM {spec.cursors} c CROSS JOIN LATERAL (
            SELECT e.app_id, e.{spec.time_column} AS at FROM {spec.table} e
            WHERE e.lane = c.lane AND e.position > c.position AND e.kind = any({kinds})
            ORDER BY e.position LIMIT {cap}) AS x
        WHERE c.consumer = {consumer}
        UNION ALL
        SELECT x.app_id, x.at FROM {spec.holds} h
        JOIN {spec.cursors} c ON c.consumer = h.consumer AND c.lane = h.lane
        CROSS JOIN LATERAL (
            SELECT e.app_id, e.{spec.time_column} AS at FROM {spec.table} e
            WHERE e.lane = h.lane AND e.app_id = h.app_id AND e.position >= h.from_position
              AND e.position <= c.position AND e.kind = any({kinds})
            LIMIT {cap}) AS x
        WHERE h.consumer = {consumer}
        LIMIT {cap})"""


async def backlog_counts(conn: asyncpg.Connection | asyncpg.Pool, spec: LogSpec,
                         kinds: dict[str, tuple[int, ...]], cap: int) -> dict[str, int]:
    """Per consumer: items waiting for it (held apps' included), counted up to `cap` (a deep
    backlog costs no more to read than the bound it is compared with, but still a scan of
    that many index entries: callers read it sparingly)."""
    rows = await conn.fetch(
        f"""WITH {_CONSUMER_KINDS}
            SELECT k.consumer, (SELECT count(*) FROM {_waiting_sql(spec, "k.consumer", "k.kinds", "$3")} AS w) AS items
            FROM k""",
        list(kinds), _kind_arrays(kinds), cap)
    return {r["consumer"]: r["items"] for r in rows}


async def backlog_ages(conn: asyncpg.Connection | asyncpg.Pool, spec: LogSpec,
                       kinds: dict[str, tuple[int, ...]]) -> dict[str, float]:
    """Per consumer: the age in seconds of the oldest item waiting for it, a held app's
    included (one index probe per lane)."""
    rows = await conn.fetch(
        f"""WITH {_CONSUMER_KINDS}
            SELECT k.consumer, greatest(0, extract(epoch FROM now() - least(
                (SELECT min(x.at) FROM {spec.cursors} c CROSS JOIN LATERAL (
                     SELECT {spec.time_column} AS at FROM {spec.table} e
                     WHERE e.lane = c.lane AND e.position > c.position AND e.kind = any(k.kinds)
                     ORDER BY e.position LIMIT 1) AS x
                 WHERE c.consumer = k.consumer),
                (SELECT min(since) FROM {spec.holds} h WHERE h.consumer = k.consumer))))::float8 AS age
            FROM k""",
        list(kinds), _kind_arrays(kinds))
    return {r["consumer"]: r["age"] or 0.0 for r in rows}


async def backlog_by_app(conn: asyncpg.Connection | asyncpg.Pool, spec: LogSpec, kinds: dict[str, tuple[int, ...]],
                         cap: int) -> dict[str, dict[str, tuple[int, float]]]:
    """Per consumer and app: items waiting (held apps' included) and the age of the oldest,
    from the first `cap` waiting items of each consumer (read only while a total passes a
    bound)."""
    rows = await conn.fetch(
        f"""WITH {_CONSUMER_KINDS}
            SELECT k.consumer, w.app_id, count(*) AS items,
                   greatest(0, extract(epoch FROM now() - min(w.at)))::float8 AS age
            FROM k CROSS JOIN LATERAL {_waiting_sql(spec, "k.consumer", "k.kinds", "$3")} AS w
            GROUP BY k.consumer, w.app_id""",
        list(kinds), _kind_arrays(kinds), cap)
    out: dict[str, dict[str, tuple[int, float]]] = {c: {} for c in kinds}
    for r in rows:
        out[r["consumer"]][r["app_id"]] = (r["items"], r["age"])
    return out
