"""ReadEvents: an app's stored events, read back in (lane, position) order up to a position
per lane, a page per query. For a consumer that starts counting something new (segmentation's
property filters) and needs the past it has already applied, and none of what it has not.

A page is one statement over the `(lane, position)` index: rows after the last one sent, at or
below the lane's bound, ordered by lane then position, so where a page ends is a (lane,
position) pair and the next page (or a resumed stream) starts right after it. A bound taken
from what a consumer has applied is final: the log's readers hand over only items below their
horizon (nudgelib.eventlog.horizon), so no item at or below it can still commit. Events are
partitioned by the day they were received, and an event is never dated more than
`MAX_FUTURE_SKEW` after its arrival (validation refuses it), so one that occurred at or after
`since` was received at or after `since - MAX_FUTURE_SKEW`: earlier partitions are pruned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from nudge.ingestion.v1 import ingestion_internal_service_pb2 as pb
from nudgelib.errors import FieldViolation, InvalidArgument
from nudgelib.eventlog.lanes import LANES
from nudgelib.names import is_event_name
from nudgelib.pagination import decode_token, encode_token, page_size
from nudgelib.protoconv import to_datetime
from services.ingestion.store import EVENT
from services.ingestion.validation import MAX_EVENT_BYTES, MAX_FUTURE_SKEW

DEFAULT_PAGE, MAX_PAGE = 1000, 5000
MAX_NAMES = 100
# Events of one message, at most: far below gRPC's 4 MiB default limit (an event is at most
# MAX_EVENT_BYTES, so a page always holds at least one).
PAGE_BYTES = 1 << 20
assert MAX_EVENT_BYTES < PAGE_BYTES

_PAGE = f"""
SELECT lane, position, payload FROM events
WHERE (lane, position) > ($2::smallint, $3::bigint)
  AND position <= ($4::bigint[])[lane + 1]
  AND app_id = $1 AND kind = {EVENT} AND name = any($5::text[])
  AND received_at >= coalesce($6::timestamptz, '-infinity')
  AND occurred_at >= coalesce($7::timestamptz, '-infinity') AND occurred_at < coalesce($8::timestamptz, 'infinity')
ORDER BY lane, position
LIMIT $9
"""


@dataclass(frozen=True)
class Query:
    app_id: str
    names: list[str]
    since: datetime | None
    until: datetime | None
    upto: list[int]  # per lane 0..LANES-1
    size: int
    digest: str  # of everything above but the size: a token is only good for its own request
    after: tuple[int, int] = (-1, -1)  # the last (lane, position) sent

    @property
    def token(self) -> str:
        """The page token of this query: where it starts."""
        return encode_token(str(self.after[0]), str(self.after[1]), self.digest)


def parse(request: pb.ReadEventsRequest) -> Query:
    """The request as a query; INVALID_ARGUMENT naming each bad field."""
    problems: list[FieldViolation] = []
    if not request.app_id:
        problems.append(FieldViolation("app_id", "is required"))
    names = list(request.names)
    if not names:
        problems.append(FieldViolation("names", "must hold at least one event name"))
    elif len(names) > MAX_NAMES:
        problems.append(FieldViolation("names", f"at most {MAX_NAMES} names"))
    for i, name in enumerate(names):
        if not is_event_name(name):
            problems.append(FieldViolation(f"names[{i}]", "is not a valid event name"))
        elif name in names[:i]:
            problems.append(FieldViolation(f"names[{i}]", "is listed twice"))
    since = to_datetime(request.occurred_since) if request.HasField("occurred_since") else None
    until = to_datetime(request.occurred_until) if request.HasField("occurred_until") else None
    if since is not None and until is not None and until <= since:
        problems.append(FieldViolation("occurred_until", "must be after occurred_since"))
    upto = [0] * LANES
    seen: set[int] = set()
    for i, bound in enumerate(request.upto):
        if bound.lane >= LANES:
            problems.append(FieldViolation(f"upto[{i}].lane", f"must be below {LANES}"))
        elif bound.lane in seen:
            problems.append(FieldViolation(f"upto[{i}].lane", "is listed twice"))
        elif bound.position < 0:
            problems.append(FieldViolation(f"upto[{i}].position", "must not be negative"))
        else:
            seen.add(bound.lane)
            upto[bound.lane] = bound.position
    if problems:
        raise InvalidArgument(problems)
    digest = hashlib.sha256(repr((request.app_id, names, since, until, upto)).encode()).hexdigest()[:16]
    query = Query(request.app_id, names, since, until, upto,
                  page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE), digest)
    if request.page_token:
        try:
            lane, position, of = decode_token(request.page_token, 3)
            after = (int(lane), int(position))
        except ValueError:
            raise InvalidArgument.field("page_token", "is not a page token of ReadEvents") from None
        if of != digest:
            raise InvalidArgument.field("page_token", "belongs to another request (app, names, times or upto differ)")
        query = replace(query, after=after)
    return query


@dataclass(frozen=True)
class Page:
    payloads: list[bytes]  # serialized nudge.common.v1.Event, in order
    next: Query | None  # the query of the next page; None after the last


async def read_page(conn: asyncpg.Connection | asyncpg.Pool, query: Query) -> Page:
    """One page: at most `size` events and PAGE_BYTES of them."""
    received_from = query.since - MAX_FUTURE_SKEW if query.since is not None else None
    rows = await conn.fetch(_PAGE, query.app_id, query.after[0], query.after[1], query.upto, query.names,
                            received_from, query.since, query.until, query.size)
    payloads: list[bytes] = []
    size = 0
    for row in rows:
        if payloads and size + len(row["payload"]) > PAGE_BYTES:
            break
        payloads.append(row["payload"])
        size += len(row["payload"])
        last = (row["lane"], row["position"])
    if len(payloads) < query.size and len(payloads) == len(rows):
        return Page(payloads, None)  # fewer than asked, none held back: nothing follows
    return Page(payloads, replace(query, after=last))
