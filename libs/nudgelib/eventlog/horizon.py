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
