"""Wiring of the delivery service."""

from __future__ import annotations

from pathlib import Path

from nudge.common.v1 import common_pb2
from nudge.delivery.v1 import (
    delivery_internal_service_pb2,
    delivery_internal_service_pb2_grpc,
    delivery_service_pb2,
    delivery_service_pb2_grpc,
)
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as ingestion_grpc
from nudgelib.accounts import Scope
from nudgelib.interceptor import AccessPolicy
from nudgelib.ordered_outbox import OutboxMetrics, ShardedOutbox
from nudgelib.server import ServiceHost, ServiceSpec
from services.delivery.campaigns import Campaigns
from services.delivery.handout import Handout
from services.delivery.servicer import DeliveryInternalServicer, DeliveryServicer
from services.delivery.settings import DeliverySettings
from services.delivery.store import INBOX_CHANNEL, OUTBOX_CHANNEL, OUTBOX_SHARDS
from services.delivery.streams import STREAM_CHANNEL, StreamHub

POLICY = AccessPolicy({
    "FetchMessages": Scope.MESSAGES_READ,
    "Subscribe": Scope.MESSAGES_READ,
    "ReportInteraction": Scope.MESSAGES_READ,
    "GetCampaignStats": Scope.ADMIN,
    "ListSurveyAnswers": Scope.ADMIN,
})


def _to_ingestion(host: ServiceHost):
    peer = host.peers["ingestion"]
    stub = ingestion_grpc.IngestionInternalServiceStub(peer.channel)

    async def send(app_id: str, _kind: str, payloads: list[bytes]) -> None:
        events = [common_pb2.Event.FromString(p) for p in payloads]
        await peer.call(stub.IngestEvents, ingestion_pb.IngestEventsRequest(app_id=app_id, events=events))

    return send


async def wire(host: ServiceHost, settings: DeliverySettings) -> None:
    handout = Handout(host.pool, host.clock, host.peers["decision"], StreamHub(), host.registry,
                      settings.decide_in_flight)
    host.listener(INBOX_CHANNEL, handout.on_inbox_notify)
    host.listener(STREAM_CHANNEL, handout.on_stream_notify)
    host.run_in_background(handout.reoffer_loop(settings.reoffer_seconds), "reoffer")
    events = ShardedOutbox(host.pool, "event_outbox", _to_ingestion(host), OUTBOX_SHARDS,
                           policy=settings.failures.policy(), metrics=OutboxMetrics(host.registry))
    host.listener(OUTBOX_CHANNEL, events.wake)
    host.run_in_background(events.run(), "interaction-events")
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
)
