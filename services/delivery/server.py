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
from nudgelib.server import ServiceHost, ServiceSpec
from services.delivery.servicer import DeliveryInternalServicer, DeliveryServicer

POLICY = AccessPolicy({
    "FetchMessages": Scope.MESSAGES_READ,
    "Subscribe": Scope.MESSAGES_READ,
    "ReportInteraction": Scope.MESSAGES_READ,
    "GetCampaignStats": Scope.ADMIN,
})


async def wire(host: ServiceHost) -> None:
    delivery_service_pb2_grpc.add_DeliveryServiceServicer_to_server(
        DeliveryServicer(host.pool, host.clock, host.peers["decision"]), host.server)
    delivery_internal_service_pb2_grpc.add_DeliveryInternalServiceServicer_to_server(
        DeliveryInternalServicer(host.pool), host.server)


SPEC = ServiceSpec(
    name="delivery",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(
        delivery_service_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name,
        delivery_internal_service_pb2.DESCRIPTOR.services_by_name["DeliveryInternalService"].full_name,
    ),
    wire=wire,
    peers=("decision",),
)
