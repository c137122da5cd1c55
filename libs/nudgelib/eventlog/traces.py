"""A producer's trace context, carried from the transaction that wrote log items to the spans
that forward them (with tracing on only; see nudgelib.tracing).

The consumers take items in batches, long after and far from the call that wrote them, so a
forwarding span cannot be the producer's child: it is a span of its own, **linked** to the
span of each transaction whose items it forwards (OpenTelemetry's pattern for batches), and
the consumer's span is the forwarding span's child over gRPC.

The context is stored once per writing transaction, not per item: an item's position is its
transaction's id times 2^20 plus its place in the batch (`horizon.position_sql`), so the
transaction of any item read is `position >> 20`, and one table keyed by it (`traces`, a
`LogSpec` field: `xact bigint PRIMARY KEY, traceparent text, created_at timestamptz`) holds
one row per traced batch. With tracing off nothing is written or read: the log's rows are
the same as without this module.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from opentelemetry.trace import SpanContext

from nudgelib.eventlog.horizon import PER_TRANSACTION
from nudgelib.tracing import parse_traceparent, serving_traceparent


def record_sql(table: str, param: str) -> str:
    """SQL inserting the current transaction's trace context (the parameter `param`)."""
    return (f"INSERT INTO {table} (xact, traceparent) VALUES (pg_current_xact_id()::text::bigint, {param})"
            " ON CONFLICT (xact) DO NOTHING")


async def record(conn: asyncpg.Connection, table: str | None) -> None:
    """Within a transaction writing log items: stores the trace context of the traced call it
    runs in, if any (nothing, and no statement, otherwise)."""
    if table is None:
        return
    value = serving_traceparent()
    if value is not None:
        await conn.execute(record_sql(table, "$1"), value)


# How long a batch's trace context is kept for the spans forwarding its items: a link is
# worth little later, and items are forwarded within seconds unless a consumer is down.
KEEP_SECONDS = 86_400.0
SWEEP_INTERVAL = 300.0


async def sweep(conn: asyncpg.Connection | asyncpg.Pool, table: str, keep_seconds: float = KEEP_SECONDS,
                batch: int = 10_000) -> int:
    """Deletes trace contexts older than `keep_seconds`, `batch` at most (the log readers
    run it every SWEEP_INTERVAL, tracing on or not, so rows written while it was on go)."""
    done = await conn.execute(
        f"DELETE FROM {table} WHERE xact = any(ARRAY(SELECT xact FROM {table}"
        " WHERE created_at < now() - $1 * interval '1 second' LIMIT $2))", keep_seconds, batch)
    return int(done.split()[-1])


def transaction_of(position: int) -> int:
    return position // PER_TRANSACTION


async def contexts(conn: asyncpg.Connection, table: str, positions: Iterable[int]) -> dict[int, SpanContext]:
    """The producers' span contexts of the transactions that wrote the items at `positions`,
    by transaction id (one query for a whole cycle's items)."""
    xacts = sorted({transaction_of(p) for p in positions})
    if not xacts:
        return {}
    rows = await conn.fetch(f"SELECT xact, traceparent FROM {table} WHERE xact = any($1::bigint[])", xacts)
    found = {r["xact"]: parse_traceparent(r["traceparent"]) for r in rows}
    return {x: c for x, c in found.items() if c is not None}


def links_of(found: dict[int, SpanContext], positions: Iterable[int]) -> list[SpanContext]:
    """The distinct producers' contexts of the items at `positions`, in first-seen order."""
    seen: dict[int, SpanContext] = {}
    for p in positions:
        x = transaction_of(p)
        if x not in seen and x in found:
            seen[x] = found[x]
    return list(seen.values())
