"""Positions in a log table, and how far a reader may read without passing over an item that
commits later (the tailing gap).

An item's position is its writing transaction's id (xid8) times 2^20 plus its place in the
transaction's batch. Positions come from transaction ids, which are handed out in order but
commit in any order: a reader that saw position 20·2^20 committed may later see 19·2^20 commit,
and a cursor already past it would skip it for ever. So a reader reads only below its
*horizon*: the lowest transaction id that may still write to the log.

Writers enter a **gate** first: a shared transaction-level advisory lock, taken before the
transaction's first write, that is, before it has an id. The horizon is the least of

- the next transaction id to be handed out, as of the reader's statement snapshot, and
- the id of every transaction that holds the gate (from `pg_locks`: its advisory lock, joined
  to the `transactionid` lock every transaction holds on its own id).

Why no item below the horizon can commit after the reader's next statement: take a writer
with id X below the horizon, so X was handed out before the horizon statement's snapshot, and
the writer was then already inside the gate (it enters before it has an id). If it were still
running when the locks were read, it would hold the gate with id X and the horizon would be at
most X. So it had ended before: committed (and, since PostgreSQL releases locks only after a
commit is visible, visible to the reader's later statements) or rolled back (its items never
exist). The rows are read by a statement after the horizon's, with a newer snapshot.

The horizon ignores every other transaction of the database, so a long transaction elsewhere
(a migration, a rule recompute) never holds a reader back; only the log's own writers do, for
as long as one batch takes to commit.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

# Items of one transaction: at most 2^20, numbered from 1.
PER_TRANSACTION = 1 << 20


def position_sql(place: str) -> str:
    """The SQL expression of the position of the item numbered `place` (1-based) in the
    current transaction. The transaction must have entered the gate."""
    return f"(pg_current_xact_id()::text::bigint * {PER_TRANSACTION} + {place})"


async def enter_gate(conn: asyncpg.Connection, gate: tuple[int, int]) -> None:
    """Within a transaction that has written nothing yet: marks it as a writer of the log."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1, $2)", *gate)


# The two-int advisory form shows in pg_locks as classid = key1, objid = key2, objsubid = 2.
# transactionid is a 32-bit xid: widened to the xid8 epoch of the snapshot's next id (a running
# transaction's id is always less than 2^31 below it).
def horizon_ctes(key1: str, key2: str) -> str:
    """CTEs ending in `horizon(below)`, for a statement whose parameters `key1` and `key2` are
    the gate's two keys."""
    return f"""locks AS MATERIALIZED (
    SELECT pid, locktype, classid, objid, objsubid, transactionid, mode, granted FROM pg_locks
), snap AS MATERIALIZED (
    SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next
), horizon AS MATERIALIZED (
    SELECT least(snap.next, (
        SELECT min(snap.next - ((snap.next - x.transactionid::text::bigint) & 4294967295))
        FROM locks g JOIN locks x ON x.pid = g.pid
        WHERE g.locktype = 'advisory' AND g.classid = {key1}::bigint::oid AND g.objid = {key2}::bigint::oid
          AND g.objsubid = 2 AND g.granted
          AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
    )) * {PER_TRANSACTION} AS below
    FROM snap
)"""


async def horizon(conn: asyncpg.Connection | asyncpg.Pool, gate: tuple[int, int]) -> int:
    """Positions below this are final: no item below it can appear after this returns."""
    return await conn.fetchval(f"WITH {horizon_ctes('$1', '$2')} SELECT below FROM horizon", *gate)


class SharedHorizon:
    """One horizon for every reader loop of a process, read at most every `max_age` seconds.

    Reading it means reading PostgreSQL's lock table, which holds up every lock being taken
    meanwhile (each writing transaction takes one on its own id), so the loops share it. A
    horizon stays true once read: an older one only makes a reader stop short, never skip. A
    loop that finds it older than `max_age` reads it again; loops that ask meanwhile wait for
    that read rather than make their own. After `advance` (this process committed items and
    woke its readers), only a horizon read after that call is used, so they see the items.
    """

    def __init__(self, pool: asyncpg.Pool, gate: tuple[int, int], max_age: float = 0.005) -> None:
        self._pool = pool
        self._gate = gate
        self._max_age = max_age
        self._generation = 0
        self._value = 0
        self._value_generation = -1
        self._read_at = float("-inf")
        self._reading: tuple[int, asyncio.Future] | None = None

    def advance(self) -> None:
        self._generation += 1

    async def get(self) -> int:
        fresh = time.monotonic() - self._read_at <= self._max_age
        if fresh and self._value_generation == self._generation:
            return self._value
        if self._reading is None or self._reading[0] != self._generation:
            self._reading = (self._generation, asyncio.ensure_future(self._read(self._generation)))
        reading = self._reading
        try:
            return await asyncio.shield(reading[1])
        finally:
            if self._reading is reading and reading[1].done():
                self._reading = None

    async def _read(self, generation: int) -> int:
        started = time.monotonic()
        value = await horizon(self._pool, self._gate)
        if generation >= self._value_generation:
            self._value, self._value_generation, self._read_at = value, generation, started
        return value
