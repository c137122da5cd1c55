"""A consumer's side of a log: apply each item once, by position.

Per (source log, app, lane) the consumer keeps the position of the last item it applied, and
writes it in the transaction of the items' effects. An item at or below it has had its
effects already and is skipped. Why this is exactly once:

- The reader sends the items of one (app, lane) in ascending position order and never sends
  an item before every lower item of that (app, lane) was applied here or set aside (a lane is
  read by one loop at a time across replicas, and an app whose item fails is held in that lane
  from that item on: `nudgelib.eventlog.dispatcher`).
- So when an item arrives, every lower item of its (app, lane) that will ever be applied
  already is, and the stored position is below it unless the item itself was applied before
  (a retried call whose answer was lost, or a replica that read it again after a crash).
- Effects and position commit together: a call that fails leaves both as they were. Calls for
  one (app, lane) that overlap (a replica that lost its claim while its call was still being
  applied) are serialized by the lock on the position row, and the second sees the first's.

A call without a span (tests, tools) is applied as given.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from nudge.common.v1 import common_pb2
from nudgelib.errors import InvalidArgument

# One statement: record the highest position of each lane of the call, and answer what was
# recorded before (PostgreSQL 18's RETURNING old), locking the rows until the transaction ends.
_ADVANCE = """
INSERT INTO log_positions AS p (source, app_id, lane, position)
SELECT $1, $2, lane, max(position) FROM unnest($3::smallint[], $4::bigint[]) AS t(lane, position)
GROUP BY lane
ON CONFLICT (source, app_id, lane) DO UPDATE SET position = greatest(p.position, excluded.position)
RETURNING new.lane, old.position AS before
"""


def require_span(span: common_pb2.LogSpan, items: int) -> None:
    """INVALID_ARGUMENT on `span` unless it fits a call of `items` items."""
    problem = span_problem(span, items)
    if problem:
        raise InvalidArgument.field("span", problem)


def span_problem(span: common_pb2.LogSpan, items: int) -> str | None:
    """What is wrong with a call's span for `items` items, or None."""
    if not span.source:
        return None if not span.lanes and not span.positions else "source is required with lanes"
    if len(span.lanes) != items or len(span.positions) != items:
        return f"lanes and positions need one entry per item ({items})"
    last: dict[int, int] = {}
    for lane, position in zip(span.lanes, span.positions):
        if lane > 32767:
            return "lanes must be at most 32767"
        if position <= last.get(lane, -1):
            return "positions must ascend within a lane"
        last[lane] = position
    return None


def subspan(span: common_pb2.LogSpan, kept: Sequence[int]) -> common_pb2.LogSpan:
    """The span of the items at indexes `kept` (a consumer that ignores some items)."""
    if not span.source:
        return span
    return common_pb2.LogSpan(source=span.source, lanes=[span.lanes[i] for i in kept],
                              positions=[span.positions[i] for i in kept])


async def fresh(conn: asyncpg.Connection, app_id: str, span: common_pb2.LogSpan, items: Sequence) -> list:
    """Within the consumer's transaction: the items not applied before, in order, with the
    span's positions recorded as applied (they commit, or roll back, with the effects)."""
    if not span.source or not items:
        return list(items)
    rows = await conn.fetch(_ADVANCE, span.source, app_id, list(span.lanes), list(span.positions))
    before = {r["lane"]: r["before"] for r in rows}
    return [item for item, lane, position in zip(items, span.lanes, span.positions)
            if before.get(lane) is None or position > before[lane]]

