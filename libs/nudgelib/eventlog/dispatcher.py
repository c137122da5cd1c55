"""Reads a log table and forwards its items to each consumer: at least once, in position order
per lane, across any number of replicas; applied once by the consumer (`positions`).

**Claims.** Each consumer has its own loops. A loop claims lanes that have work with
transaction-level advisory try-locks (one loop at a time per consumer and lane, across every
replica; a crashed replica's locks go with its connection), reads each lane from that
consumer's cursor up to the horizon (`horizon`: nothing below it can still commit), forwards,
moves the cursors and commits, which releases the lanes. The rows are read by a statement
after the locks are held, so a loop never reads a cursor older than the last commit on it.

**Batches.** At most `batch_items` items and about `batch_bytes` bytes are read per cycle,
split evenly between the claimed lanes. Items become as few calls as the per-lane order
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

The table shapes (names from `LogSpec`):
- the log: `lane smallint, position bigint, app_id text, user_id text, kind smallint,
  payload bytea`, and a timestamptz (`time_column`); an index on (lane, position);
- cursors: `consumer text, lane smallint, position bigint`, a row per consumer and lane;
- holds: `consumer, lane, app_id, from_position bigint, attempts integer, next_try
  timestamptz, error text, since timestamptz`, keyed by (consumer, lane, app_id);
- dead letters: `consumer, lane, app_id, kind text, items integer, user_ids text[], payload,
  created_at, error, attempts, position`.
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

from nudgelib.dead_letters import fault_of, warn_dead
from nudgelib.eventlog.grouping import group
from nudgelib.eventlog.horizon import horizon_ctes
from nudgelib.eventlog.metrics import LogMetrics
from nudgelib.isolation import Policy, isolate
from nudgelib.loops import AT_ONCE, Backoff, Loop, run_together

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

    def lane_lock(self, consumer: str) -> int:
        return self.lock_class + self.consumers.index(consumer)


@dataclass(frozen=True)
class Item:
    """One item of the log as a reader forwards it."""

    lane: int
    position: int
    app_id: str
    user_id: str
    kind: int
    payload: bytes
    at: object  # the time column's value

    def __getitem__(self, key: str):  # grouping.group reads rows by key
        return getattr(self, key)


@dataclass(frozen=True)
class Target:
    """A consumer as the reader uses it: which kinds it takes, how one call is sent (one app,
    one kind; raises if not taken), and whether it is reachable."""

    name: str
    kinds: tuple[int, ...]
    send: Callable[[str, int, list[Item]], Awaitable[None]]
    ready: Callable[[float], Awaitable[bool]]


async def lock_lane(conn: asyncpg.Connection, spec: LogSpec, lane: int) -> None:
    """Within a transaction: waits for every consumer's reader of the lane to finish, and keeps
    them out until it ends (erasure)."""
    await conn.execute("SELECT pg_advisory_xact_lock(k, $1) FROM unnest($2::int[]) AS k",
                       lane, [spec.lane_lock(c) for c in spec.consumers])


def _claim_sql(spec: LogSpec) -> str:
    # Only lanes with something to do are locked (OFFSET 0 keeps that test before the lock): a
    # loop woken for a new item must not spend its claim on empty lanes.
    return f"""
WITH {horizon_ctes("$1", "$2")}
SELECT horizon.below, ARRAY(
    SELECT l FROM (
        SELECT c.lane AS l FROM {spec.cursors} c
        WHERE c.consumer = $3 AND c.lane = any($4::smallint[])
          AND (EXISTS (SELECT 1 FROM {spec.table} e WHERE e.lane = c.lane AND e.position > c.position
                         AND e.position < horizon.below AND e.kind = any($5::smallint[]))
               OR EXISTS (SELECT 1 FROM {spec.holds} h WHERE h.consumer = $3 AND h.lane = c.lane
                            AND h.next_try <= now()))
        ORDER BY array_position($4::smallint[], c.lane) OFFSET 0
    ) AS busy WHERE pg_try_advisory_xact_lock($6, l) LIMIT $7
) AS lanes
FROM horizon
"""


def _read_sql(spec: LogSpec) -> str:
    # Each claimed lane from its cursor, at most $5 items and about $6 bytes of it.
    return f"""
SELECT c.lane AS cursor_lane, c.position AS cursor, e.*
FROM {spec.cursors} c LEFT JOIN LATERAL (
    SELECT x.lane, x.position, x.app_id, x.user_id, x.kind, x.payload, x.at FROM (
        SELECT y.*, sum(length(y.payload)) OVER (ORDER BY y.position) AS upto FROM (
            SELECT lane, position, app_id, user_id, kind, payload, {spec.time_column} AS at FROM {spec.table}
            WHERE lane = c.lane AND position > c.position AND position < $3 AND kind = any($4::smallint[])
            ORDER BY position LIMIT $5
        ) AS y
    ) AS x WHERE x.upto - length(x.payload) < $6
) AS e ON true
WHERE c.consumer = $1 AND c.lane = any($2::smallint[])
ORDER BY c.lane, e.position
"""


def _held_sql(spec: LogSpec) -> str:
    # The items of held apps, from the held one up to the lane's cursor.
    return f"""
SELECT e.lane, e.position, e.app_id, e.user_id, e.kind, e.payload, e.at
FROM unnest($1::smallint[], $2::text[], $3::bigint[], $4::bigint[]) AS h(lane, app_id, from_position, upto)
CROSS JOIN LATERAL (
    SELECT lane, position, app_id, user_id, kind, payload, {spec.time_column} AS at FROM {spec.table}
    WHERE lane = h.lane AND app_id = h.app_id AND position >= h.from_position AND position <= h.upto
      AND kind = any($5::smallint[])
    ORDER BY position LIMIT $6
) AS e
ORDER BY e.lane, e.app_id, e.position
"""


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

    sent: set[tuple[int, int]] = field(default_factory=set)  # (lane, position)
    holds: dict[tuple[int, str], _Hold] = field(default_factory=dict)
    dead: list[tuple[Item, str, int]] = field(default_factory=list)  # item, error, attempts
    down: BaseException | None = None
    failures: int = 0


class LogDispatcher:
    def __init__(self, pool: asyncpg.Pool, spec: LogSpec, targets: Sequence[Target],
                 metrics: LogMetrics | None = None, *,
                 workers: int = 2, batch_items: int = 4000, batch_bytes: int = 8 << 20, call_items: int = 4000,
                 call_bytes: int = 4 << 20, poll_interval: float = 1.0, max_backoff: float = 5.0,
                 policy: Policy = Policy()) -> None:
        self._pool = pool
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
        self._loops = [self._loop(t, i) for t in targets for i in range(workers)]
        # Items this dispatcher has had taken, and set aside (also in metrics).
        self.forwarded = 0
        self.dead_lettered = 0

    def wake(self, _payload: str | None = None) -> None:
        for loop in self._loops:
            loop.wake()

    async def measure_backlog(self, cap: int = 1_000_000) -> tuple[dict[str, int], dict[str, float]]:
        """Per consumer: items waiting (counted up to `cap`) and the oldest one's age in seconds,
        also published as gauges."""
        items, ages = await backlog(self._pool, self.spec, {t.name: t.kinds for t in self._targets.values()}, cap)
        if self._metrics:
            for consumer in items:
                self._metrics.backlog(consumer, items[consumer], ages[consumer])
        return items, ages

    async def run_backlog_gauges(self, interval: float = 5.0) -> None:
        """Keeps the backlog gauges fresh (for logs that no backpressure monitor reads)."""
        async def step() -> None:
            await self.measure_backlog()

        await Loop(f"log-{self.spec.table}-backlog", step, poll=interval, backoff=Backoff.steady(interval)).run()

    async def run(self) -> None:
        await run_together(self._loops)

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
        async with self._pool.acquire() as conn, conn.transaction():
            below, lanes = await conn.fetchrow(self._claim, *spec.gate, consumer, offered, list(target.kinds),
                                               spec.lane_lock(consumer), self.lanes_per_claim)
            if not lanes:
                return 0, False
            per_lane = max(1, -(-self._batch_items // len(lanes)))
            rows = await conn.fetch(self._read, consumer, lanes, below, list(target.kinds), per_lane,
                                    max(1, self._batch_bytes // len(lanes)))
            cursors = {r["cursor_lane"]: r["cursor"] for r in rows}
            items = [_item(r) for r in rows if r["position"] is not None]
            for h in await conn.fetch(
                    f"SELECT lane, app_id, from_position, attempts, next_try <= now() AS due FROM {spec.holds}"
                    " WHERE consumer = $1 AND lane = any($2::smallint[])", consumer, lanes):
                cycle.holds[(h["lane"], h["app_id"])] = _Hold(h["lane"], h["app_id"], h["from_position"],
                                                              h["attempts"], h["due"])
            due = [h for h in cycle.holds.values() if h.due]
            await self._forward(target, items, cycle)
            moved = _cursors(items, cursors, cycle)
            if due and cycle.down is None:
                await self._retry_held(conn, target, due, {**cursors, **moved}, per_lane, cycle)
            await self._commit(conn, consumer, moved, cycle)
        forwarded = len(cycle.sent)
        self.forwarded += forwarded
        self.dead_lettered += len(cycle.dead)
        if self._metrics:
            self._metrics.cycle(consumer, forwarded, cycle.failures, len(cycle.dead), time.perf_counter() - began)
        for item, error, attempts in cycle.dead:
            warn_dead(f"log-{spec.table}-{consumer}", item.app_id, item.user_id, error, lane=item.lane,
                      position=item.position, attempts=attempts)
        if cycle.down is not None:
            raise cycle.down
        again = any(not h.gone and h.delay == 0 for h in due)  # a held app with more to send now
        return len(items), len(items) >= per_lane * len(lanes) or again

    def _calls(self, items: list[Item]) -> list[tuple[str, int, list[Item]]]:
        """Calls of one app and kind, in an order that keeps each lane's order, bounded."""
        out = []
        for call in group(items):
            run: list[Item] = []
            size = 0
            for item in call.rows:
                if run and (len(run) >= self._call_items or size + len(item.payload) > self._call_bytes):
                    out.append((call.app_id, call.kind, run))
                    run, size = [], 0
                run.append(item)
                size += len(item.payload)
            out.append((call.app_id, call.kind, run))
        return out

    async def _send_all(self, target: Target, items: list[Item], cycle: _Cycle) -> dict[int, tuple[Item, str]]:
        """Sends items of one or more apps in calls; returns, per (lane, app) stopped by a
        refused item, that item and the error. Sets `cycle.down` and stops when the consumer
        is down."""
        stopped: dict[tuple[int, str], tuple[Item, str]] = {}
        for app_id, kind, run in self._calls(items):
            if cycle.down is not None:
                break
            run = [i for i in run if (i.lane, app_id) not in stopped and (i.lane, app_id) not in cycle.holds]
            if not run:
                continue

            async def send(part: list[Item], app_id: str = app_id, kind: int = kind) -> None:
                await target.send(app_id, kind, part)

            def counted(exc: BaseException):
                cycle.failures += 1
                return fault_of(exc)

            # A refused item stops its lane (the later items of the lane wait behind it);
            # the other lanes of the call go on. Attempts are counted by the hold, not here.
            result = await isolate(run, send, counted, None, user_of=lambda i: i.lane)
            cycle.sent.update((i.lane, i.position) for i in result.sent)
            if result.down is not None:
                cycle.down = result.down
            for refused in result.failures:
                stopped[(refused.lane, app_id)] = (refused, result.error)
        return stopped

    async def _forward(self, target: Target, items: list[Item], cycle: _Cycle) -> None:
        """The main path: the lanes' new items, but those of held apps (their hold covers them)."""
        stopped = await self._send_all(target, [i for i in items if (i.lane, i.app_id) not in cycle.holds], cycle)
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
        by_hold: dict[tuple[int, str], list[Item]] = defaultdict(list)
        for r in rows:
            by_hold[(r["lane"], r["app_id"])].append(_item(r))
        for hold in due:
            key = (hold.lane, hold.app_id)
            held = by_hold.get(key, [])
            del cycle.holds[key]  # sent as if not held; put back below unless caught up
            stopped = await self._send_all(target, held, cycle)
            if cycle.down is not None:
                unsent = [i for i in held if (i.lane, i.position) not in cycle.sent]
                if unsent:
                    hold.from_position = unsent[0].position
                cycle.holds[key] = hold
                return
            if key not in stopped:
                if len(held) < limit:
                    hold.gone = True
                else:
                    hold.from_position, hold.attempts, hold.delay = held[-1].position + 1, 0, 0.0
                cycle.holds[key] = hold
                continue
            item, error = stopped[key]
            attempts = hold.attempts + 1 if item.position == (held[0].position if held else None) else 1
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
        if cycle.dead:
            await conn.execute(
                f"""INSERT INTO {spec.dead_letters} (consumer, lane, app_id, kind, items, user_ids, payload,
                                                    created_at, error, attempts, position)
                    SELECT $1, t.lane, t.app_id, t.kind, 1, ARRAY[t.user_id], t.payload, t.at, t.error,
                           t.attempts, t.position
                    FROM unnest($2::smallint[], $3::text[], $4::text[], $5::text[], $6::bytea[],
                                $7::timestamptz[], $8::text[], $9::int[], $10::bigint[])
                        AS t(lane, app_id, kind, user_id, payload, at, error, attempts, position)""",
                consumer, *zip(*[(i.lane, i.app_id, spec.kinds[i.kind], i.user_id, i.payload, i.at, error,
                                  attempts, i.position) for i, error, attempts in cycle.dead]))


def _item(r: asyncpg.Record) -> Item:
    return Item(r["lane"], r["position"], r["app_id"], r["user_id"], r["kind"], bytes(r["payload"]), r["at"])


def _cursors(items: list[Item], cursors: dict[int, int], cycle: _Cycle) -> dict[int, int]:
    """Per lane, the new cursor: past the longest run of items taken, or covered by a hold of
    their app (held from an earlier position, so its retries will bring them)."""
    moved: dict[int, int] = {}
    blocked: set[int] = set()
    for item in items:  # in (lane, position) order
        if item.lane in blocked:
            continue
        hold = cycle.holds.get((item.lane, item.app_id))
        if (item.lane, item.position) in cycle.sent or (hold is not None and hold.from_position <= item.position):
            moved[item.lane] = item.position
        else:
            blocked.add(item.lane)
    return {lane: p for lane, p in moved.items() if p > cursors.get(lane, -1)}


# ---------------------------------------------------------------- backlog


async def backlog(conn: asyncpg.Connection | asyncpg.Pool, spec: LogSpec, kinds: dict[str, tuple[int, ...]],
                  cap: int) -> tuple[dict[str, int], dict[str, float]]:
    """Per consumer: items after its cursors (counted up to `cap`, so a deep backlog costs no
    more than the bound it is compared with) plus those of held apps, and the age in seconds of
    the oldest waiting item."""
    rows = await conn.fetch(
        f"""SELECT k.consumer,
                   (SELECT count(*) FROM (
                        SELECT 1 FROM {spec.cursors} c CROSS JOIN LATERAL (
                            SELECT 1 FROM {spec.table} e WHERE e.lane = c.lane AND e.position > c.position
                              AND e.kind = any(k.kinds) LIMIT $3) AS x
                        WHERE c.consumer = k.consumer LIMIT $3) AS y) AS items,
                   greatest(0, extract(epoch FROM now() - least(
                       (SELECT min(x.at) FROM {spec.cursors} c CROSS JOIN LATERAL (
                            SELECT {spec.time_column} AS at FROM {spec.table} e
                            WHERE e.lane = c.lane AND e.position > c.position AND e.kind = any(k.kinds)
                            ORDER BY e.position LIMIT 1) AS x
                        WHERE c.consumer = k.consumer),
                       (SELECT min(since) FROM {spec.holds} h WHERE h.consumer = k.consumer))))::float8 AS age
            FROM unnest($1::text[]) WITH ORDINALITY AS n(consumer, i)
            CROSS JOIN LATERAL (SELECT n.consumer, ($2::text[])[n.i]::smallint[] AS kinds) AS k""",
        list(kinds), ["{" + ",".join(map(str, v)) + "}" for v in kinds.values()], cap)
    return ({r["consumer"]: r["items"] for r in rows}, {r["consumer"]: r["age"] or 0.0 for r in rows})


async def backlog_by_app(conn: asyncpg.Connection | asyncpg.Pool, spec: LogSpec, kinds: dict[str, tuple[int, ...]],
                         cap: int) -> dict[str, dict[str, tuple[int, float]]]:
    """Per consumer and app: items waiting and the age of the oldest, from the first `cap`
    items after each consumer's cursors (read only while a total passes a bound)."""
    out: dict[str, dict[str, tuple[int, float]]] = {}
    for consumer, consumer_kinds in kinds.items():
        rows = await conn.fetch(
            f"""SELECT y.app_id, count(*) AS items, greatest(0, extract(epoch FROM now() - min(y.at)))::float8 AS age
                FROM (SELECT x.app_id, x.at FROM {spec.cursors} c CROSS JOIN LATERAL (
                          SELECT e.app_id, e.{spec.time_column} AS at FROM {spec.table} e
                          WHERE e.lane = c.lane AND e.position > c.position AND e.kind = any($2::smallint[])
                          ORDER BY e.position LIMIT $3) AS x
                      WHERE c.consumer = $1 LIMIT $3) AS y
                GROUP BY y.app_id""",
            consumer, list(consumer_kinds), cap)
        out[consumer] = {r["app_id"]: (r["items"], r["age"]) for r in rows}
    return out
