"""Wiring of the segmentation service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from nudge.segmentation.v1 import (
    segmentation_internal_service_pb2,
    segmentation_internal_service_pb2_grpc,
    segmentation_service_pb2,
    segmentation_service_pb2_grpc,
)
from nudgelib.accounts import Scope
from nudgelib.eventlog.dispatcher import LogDispatcher
from nudgelib.eventlog.metrics import LogMetrics
from nudgelib.interceptor import AccessPolicy
from nudgelib.replay import Replays
from nudgelib.request_checks import INGESTED
from nudgelib.retention import prune_loop
from nudgelib.server import ServiceHost, ServiceSpec
from services.segmentation import announcements, store
from services.segmentation.announcements import DecisionSender
from services.segmentation.caches import Catalogs, ContextCache
from services.segmentation.membership import Memberships
from services.segmentation.past_events import IngestionEvents
from services.segmentation.segments import Segments
from services.segmentation.servicer import SegmentationInternalServicer, SegmentationServicer
from services.segmentation.settings import SegmentationSettings

POLICY = AccessPolicy({
    name: Scope.ADMIN
    for name in ("CreateSegment", "UpdateSegment", "GetSegment", "ListSegments", "DeleteSegment",
                 "EstimateAudience", "ListSegmentMembers", "GetUserProfile")
})


async def wire(host: ServiceHost, settings: SegmentationSettings) -> None:
    catalogs = Catalogs(host.pool)
    host.listener(store.SEGMENTS_CHANNEL, catalogs.invalidate)
    cache = ContextCache(settings.context_cache_size)
    host.listener(store.USERS_CHANNEL, cache.on_notify)

    outbox = LogDispatcher(host.pool, announcements.LOG, [DecisionSender(host.peers["decision"]).target()],
                           LogMetrics(host.registry, "segmentation", announcements.LOG.consumers), workers=1,
                           batch_items=settings.outbox_batch, call_items=settings.outbox_batch,
                           max_backoff=settings.outbox_max_backoff_seconds, policy=settings.failures.policy(),
                           tracing=host.tracing)
    host.listener(store.OUTBOX_CHANNEL, outbox.wake)
    host.run_in_background(outbox.run(), "outbox")
    host.run_in_background(outbox.run_backlog_gauges(), "outbox-backlog")

    memberships = Memberships(host.pool, catalogs, cache, host.clock, settings, outbox.wake)
    host.on_close(memberships.close)
    segments = Segments(host.pool, catalogs, host.clock, settings, outbox.wake,
                        past=IngestionEvents(host.peers["ingestion"]))
    host.run_in_background(memberships.run_sweeper(), "sweeper")
    replays = Replays(host.pool, "segment_requests", timedelta(hours=settings.request_id_window_hours), host.clock)
    host.run_in_background(prune_loop(host.pool, host.clock, [replays.retention()],
                                      settings.maintenance_interval_seconds), "prune")

    segmentation_service_pb2_grpc.add_SegmentationServiceServicer_to_server(
        SegmentationServicer(segments, memberships, replays, host.peers["decision"]), host.server)
    segmentation_internal_service_pb2_grpc.add_SegmentationInternalServiceServicer_to_server(
        SegmentationInternalServicer(memberships), host.server)


SPEC = ServiceSpec(
    name="segmentation",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(
        segmentation_service_pb2.DESCRIPTOR.services_by_name["SegmentationService"].full_name,
        segmentation_internal_service_pb2.DESCRIPTOR.services_by_name["SegmentationInternalService"].full_name,
    ),
    settings=SegmentationSettings.from_env,
    wire=wire,
    # Ingestion: the past events a new property filter counts (past_events).
    peers=("decision", "ingestion"),
    # Events come only from ingestion's log (internal ApplyEvents), checked at its door.
    checked_upstream=INGESTED,
)
