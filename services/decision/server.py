"""Wiring of the decision service."""

from __future__ import annotations

from pathlib import Path

from nudge.decision.v1 import (
    decision_internal_service_pb2,
    decision_internal_service_pb2_grpc,
    decision_service_pb2,
    decision_service_pb2_grpc,
)
from nudgelib.accounts import Scope
from nudgelib.interceptor import AccessPolicy
from nudgelib.server import ServiceHost, ServiceSpec
from services.decision.catalog import CampaignCatalog
from services.decision.servicer import Decider, DecisionInternalServicer, DecisionServicer
from services.decision.store import CAMPAIGNS_CHANNEL

POLICY = AccessPolicy({
    name: Scope.ADMIN
    for name in ("CreateCampaign", "UpdateCampaign", "GetCampaign", "ListCampaigns", "SetCampaignStatus",
                 "ExplainDecision", "GetAppSettings", "UpdateAppSettings")
})


async def wire(host: ServiceHost) -> None:
    catalog = CampaignCatalog(host.pool)
    host.listener(CAMPAIGNS_CHANNEL, catalog.invalidate)
    decider = Decider(host.pool, catalog, host.clock, host.peers["segmentation"])
    decision_service_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(decider), host.server)
    decision_internal_service_pb2_grpc.add_DecisionInternalServiceServicer_to_server(
        DecisionInternalServicer(decider), host.server)


SPEC = ServiceSpec(
    name="decision",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(
        decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
        decision_internal_service_pb2.DESCRIPTOR.services_by_name["DecisionInternalService"].full_name,
    ),
    wire=wire,
    peers=("segmentation", "delivery"),
)
