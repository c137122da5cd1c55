"""Wiring of the delivery service."""

from __future__ import annotations

from pathlib import Path

from nudge.delivery.v1 import (
    delivery_internal_service_pb2,
    delivery_internal_service_pb2_grpc,
    delivery_service_pb2,
    delivery_service_pb2_grpc,
)
from nudgelib.accounts import Scope
from nudgelib.interceptor import AccessPolicy
from nudgelib.eventlog.dispatcher import LogDispatcher
from nudgelib.eventlog.metrics import LogMetrics
from nudgelib.request_checks import INGESTED
from nudgelib.server import ServiceHost, ServiceSpec
from services.delivery import interaction_events
from services.delivery.campaigns import Campaigns
from services.delivery.handout import Handout, calls_in_flight
from services.delivery.servicer import DeliveryInternalServicer, DeliveryServicer
from services.delivery.settings import DeliverySettings
from services.delivery.store import INBOX_CHANNEL
from services.delivery.streams import STREAM_CHANNEL, StreamHub

POLICY = AccessPolicy({
    "FetchMessages": Scope.MESSAGES_READ,
    "Subscribe": Scope.MESSAGES_READ,
    "ReportInteraction": Scope.MESSAGES_READ,
    "GetCampaignStats": Scope.ADMIN,
    "ListSurveyAnswers": Scope.ADMIN,
})


async def wire(host: ServiceHost, settings: DeliverySettings) -> None:
    handout = Handout(host.pool, host.clock, host.peers["decision"], StreamHub(), host.registry,
                      calls_in_flight(settings.decide_in_flight, host.peers["decision"].target))
    host.listener(INBOX_CHANNEL, handout.on_inbox_notify)
    host.listener(STREAM_CHANNEL, handout.on_stream_notify)
    host.run_in_background(handout.reoffer_loop(settings.reoffer_seconds), "reoffer")
    events = LogDispatcher(host.pool, interaction_events.LOG,
                           [interaction_events.IngestionSender(host.peers["ingestion"], host.registry).target()],
                           LogMetrics(host.registry, "delivery", interaction_events.LOG.consumers), workers=1,
                           policy=settings.failures.policy(), tracing=host.tracing)
    host.listener(interaction_events.CHANNEL, events.wake)
    host.run_in_background(events.run(), "interaction-events")
    host.run_in_background(events.run_backlog_gauges(), "interaction-events-backlog")
    delivery_service_pb2_grpc.add_DeliveryServiceServicer_to_server(
        DeliveryServicer(host.pool, host.clock, handout, settings.keepalive_seconds,
                         Campaigns(host.peers["decision"])), host.server)
    delivery_internal_service_pb2_grpc.add_DeliveryInternalServiceServicer_to_server(
        DeliveryInternalServicer(host.pool, host.clock, handout), host.server)


SPEC = ServiceSpec(
    name="delivery",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(
        delivery_service_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name,
        delivery_internal_service_pb2.DESCRIPTOR.services_by_name["DeliveryInternalService"].full_name,
    ),
    settings=DeliverySettings.from_env,
    wire=wire,
    peers=("decision", "ingestion"),
    # Events come only from ingestion's log (internal ApplyEvents), checked at its door.
    checked_upstream=INGESTED,
)
