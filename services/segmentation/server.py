"""Wiring of the segmentation service."""

from __future__ import annotations

from pathlib import Path

from nudge.segmentation.v1 import (
    segmentation_internal_service_pb2,
    segmentation_internal_service_pb2_grpc,
    segmentation_service_pb2,
    segmentation_service_pb2_grpc,
)
from nudgelib.accounts import Scope
from nudgelib.interceptor import AccessPolicy
from nudgelib.server import ServiceHost, ServiceSpec
from services.segmentation.catalog import SegmentCatalog
from services.segmentation.servicer import Segmentation, SegmentationInternalServicer, SegmentationServicer
from services.segmentation.store import SEGMENTS_CHANNEL

POLICY = AccessPolicy({
    name: Scope.ADMIN
    for name in ("CreateSegment", "UpdateSegment", "GetSegment", "ListSegments", "DeleteSegment",
                 "EstimateAudience", "ListSegmentMembers", "GetUserProfile")
})


async def wire(host: ServiceHost) -> None:
    catalog = SegmentCatalog(host.pool)
    host.listener(SEGMENTS_CHANNEL, catalog.invalidate)
    core = Segmentation(host.pool, catalog, host.clock)
    segmentation_service_pb2_grpc.add_SegmentationServiceServicer_to_server(SegmentationServicer(core), host.server)
    segmentation_internal_service_pb2_grpc.add_SegmentationInternalServiceServicer_to_server(
        SegmentationInternalServicer(core), host.server)


SPEC = ServiceSpec(
    name="segmentation",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(
        segmentation_service_pb2.DESCRIPTOR.services_by_name["SegmentationService"].full_name,
        segmentation_internal_service_pb2.DESCRIPTOR.services_by_name["SegmentationInternalService"].full_name,
    ),
    wire=wire,
)
