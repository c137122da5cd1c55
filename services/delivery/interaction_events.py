"""Interaction events (message_clicked, …) on their way to ingestion: delivery's log, read by
the one log engine (nudgelib.eventlog). Each is written in the transaction of its interaction,
so none is lost while ingestion is down, in the lane of its user, so a user's events keep
their order; ingestion takes them through IngestEvents, once per event id."""

from __future__ import annotations

import asyncpg
import prometheus_client as prom
import structlog

from nudge.common.v1 import common_pb2
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as ingestion_pb
from nudgelib.clients import Peer
from nudgelib.eventlog import traces
from nudgelib.eventlog.dispatcher import LogSpec, Run, Target
from nudgelib.eventlog.framing import request_bytes, split_items
from nudgelib.eventlog.horizon import enter_gate, position_sql
from nudgelib.eventlog.lanes import LANES, lane_of

log = structlog.get_logger(__name__)

EVENT = 0
CHANNEL = "nudge_delivery_outbox"

# Lane claims are (_LANE_LOCK + consumer index, lane); the writers' gate is (_GATE, 0).
_LANE_LOCK = 0x444C0000
_GATE = 0x444C0100

LOG = LogSpec(source="delivery", table="event_outbox", time_column="created_at", lanes=LANES, gate=(_GATE, 0),
              lock_class=_LANE_LOCK, kinds={EVENT: "event"}, consumers=("ingestion",), delete_taken=True,
              traces="log_traces")


async def begin_writing(conn: asyncpg.Connection) -> None:
    """First thing in a transaction that queues an event (before it writes anything)."""
    await enter_gate(conn, LOG.gate)


async def queue(conn: asyncpg.Connection, app_id: str, user_id: str, event: bytes) -> None:
    """Queues a serialized nudge.common.v1.Event; the transaction began with `begin_writing`."""
    await conn.execute(
        f"INSERT INTO event_outbox (lane, position, app_id, user_id, kind, payload)"
        f" VALUES ($1, {position_sql('1')}, $2, $3, {EVENT}, $4)", lane_of(app_id, user_id), app_id, user_id, event)
    await traces.record(conn, LOG.traces)
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


class IngestionSender:
    """Sends runs of queued events as one IngestEvents call, as raw bytes; raises unless
    ingestion took it. An event ingestion refuses (its rules, e.g. a time too far ahead) is
    not retried, since it would be refused again: each is logged with its reason and counted
    in `nudge_delivery_interaction_events_rejected`, so it does not vanish unseen."""

    def __init__(self, ingestion: Peer, registry: prom.CollectorRegistry) -> None:
        self._peer = ingestion
        self._ingest = ingestion.channel.unary_unary(
            "/nudge.ingestion.v1.IngestionInternalService/IngestEvents", request_serializer=None,
            response_deserializer=ingestion_pb.IngestEventsResponse.FromString)
        self._rejected = prom.Counter(
            "nudge_delivery_interaction_events_rejected",
            "Interaction events ingestion refused (not retried), by reason", ["reason"], registry=registry)

    async def __call__(self, app_id: str, _kind: int, runs: list[Run]) -> None:
        # The events are field 2, framed as the reader read them.
        reply = await self._peer.call(self._ingest, request_bytes(app_id, [r.framed for r in runs]))
        if reply.rejected_count:
            self._report(app_id, runs, reply)

    def _report(self, app_id: str, runs: list[Run], reply: ingestion_pb.IngestEventsResponse) -> None:
        """Only when ingestion refused some: the events are parsed again to name them."""
        events = [common_pb2.Event.FromString(item) for r in runs for item in split_items(r.framed)]
        for rejection in reply.rejected:
            self._rejected.labels(rejection.reason).inc()
            event = events[rejection.index] if rejection.index < len(events) else common_pb2.Event()
            log.warning("interaction_event_rejected", app_id=app_id, user_id=event.user_id,
                        event_id=event.event_id, event_name=event.name, reason=rejection.reason,
                        error=rejection.message)
        # An ingestion older than its `rejected` list still says how many it refused.
        unexplained = reply.rejected_count - len(reply.rejected)
        if unexplained > 0:
            self._rejected.labels("UNKNOWN").inc(unexplained)
            log.warning("interaction_event_rejected", app_id=app_id, reason="UNKNOWN", count=unexplained)

    def target(self) -> Target:
        return Target("ingestion", (EVENT,), self, self._peer.ready)
