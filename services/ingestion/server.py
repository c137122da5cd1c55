"""Wiring of the ingestion service."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nudge.ingestion.v1 import (
    ingestion_internal_service_pb2,
    ingestion_internal_service_pb2_grpc,
    ingestion_service_pb2,
    ingestion_service_pb2_grpc,
)
from nudgelib.accounts import Scope
from nudgelib.eventlog.dispatcher import LogDispatcher
from nudgelib.eventlog.metrics import LogMetrics
from nudgelib.interceptor import AccessPolicy
from nudgelib.server import ServiceHost, ServiceSpec
from services.ingestion import consumers, store
from services.ingestion.intake import Intake
from services.ingestion.maintenance import Maintenance
from services.ingestion.metrics import IngestionMetrics
from services.ingestion.monitor import PressureMonitor
from services.ingestion.pressure import Limits
from services.ingestion.servicer import IngestionInternalServicer, IngestionServicer
from services.ingestion.settings import IngestionSettings

POLICY = AccessPolicy({
    "TrackEvents": Scope.EVENTS_WRITE,
    "StreamEvents": Scope.EVENTS_WRITE,
    "Identify": Scope.EVENTS_WRITE,
    "DeleteUser": Scope.ADMIN,
})


async def wire(host: ServiceHost, s: IngestionSettings) -> None:
    metrics = IngestionMetrics(host.registry)
    # Today's partition and the next ones exist before the first event is accepted.
    maintenance = Maintenance(host.pool, host.clock, s)
    await maintenance.run_once(starting=True)
    host.run_in_background(maintenance.run(), "maintenance")

    targets = [consumers.Consumer(c, host.peers[c], s.outbox_send_timeout).target() for c in store.CONSUMERS]
    dispatcher = LogDispatcher(host.pool, store.LOG, targets, LogMetrics(host.registry, "ingestion", store.CONSUMERS),
                               workers=s.outbox_workers, batch_items=s.outbox_batch_events,
                               call_items=s.outbox_batch_events, poll_interval=s.outbox_poll_interval,
                               max_backoff=s.outbox_max_backoff, policy=s.failures.policy(), tracing=host.tracing)
    host.run_in_background(dispatcher.run(), "log")

    pressure = PressureMonitor(host.pool, dispatcher, Limits(s.max_backlog_events, s.max_backlog_age,
                                                             s.max_memory_mb << 20, s.retry_after),
                               metrics, s.pressure_refresh_interval)
    await pressure.refresh()
    host.run_in_background(pressure.run(), "backpressure")

    intake = Intake(host.pool, host.clock, metrics, pressure, on_queued=dispatcher.wake,
                    traced=host.tracing is not None)
    ingestion_service_pb2_grpc.add_IngestionServiceServicer_to_server(
        IngestionServicer(host.pool, host.clock, host.peers, intake), host.server)
    ingestion_internal_service_pb2_grpc.add_IngestionInternalServiceServicer_to_server(
        IngestionInternalServicer(intake, host.pool), host.server)


SPEC = ServiceSpec(
    name="ingestion",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(
        ingestion_service_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name,
        ingestion_internal_service_pb2.DESCRIPTOR.services_by_name["IngestionInternalService"].full_name,
    ),
    settings=IngestionSettings.from_env,
    wire=wire,
    peers=("segmentation", "decision", "delivery"),
    # Each event is validated on its own (validation.check_event) and a bad one is listed in
    # `rejected` while the rest of its batch is stored.
    per_item=("nudge.common.v1.Event",),
)


def spec(settings: IngestionSettings) -> ServiceSpec:
    """The service with the settings given rather than read from the environment (tests)."""
    return replace(SPEC, settings=lambda _env: settings)
