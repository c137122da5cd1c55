"""Wiring of the ingestion service."""

from __future__ import annotations

from pathlib import Path

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_internal_grpc
from nudge.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudgelib.accounts import Scope
from nudgelib.interceptor import AccessPolicy
from nudgelib.server import ServiceHost, ServiceSpec
from services.ingestion.outbox import OutboxDispatcher
from services.ingestion.servicer import IngestionServicer
from services.ingestion.store import OUTBOX_CHANNEL

POLICY = AccessPolicy({
    "TrackEvents": Scope.EVENTS_WRITE,
    "StreamEvents": Scope.EVENTS_WRITE,
    "Identify": Scope.EVENTS_WRITE,
    "DeleteUser": Scope.ADMIN,
})


def _senders(host: ServiceHost):
    segmentation = host.peers["segmentation"]
    decision = host.peers["decision"]
    seg_stub = seg_internal_grpc.SegmentationInternalServiceStub(segmentation.channel)
    dec_stub = decision_internal_grpc.DecisionInternalServiceStub(decision.channel)

    async def to_segmentation(app_id: str, kind: str, payloads: list[bytes]) -> None:
        if kind == "event":
            events = [common_pb2.Event.FromString(p) for p in payloads]
            await segmentation.call(seg_stub.ApplyEvents, seg_internal.ApplyEventsRequest(app_id=app_id, events=events))
        else:
            updates = [seg_internal.ProfileUpdate.FromString(p) for p in payloads]
            await segmentation.call(
                seg_stub.ApplyProfileUpdates, seg_internal.ApplyProfileUpdatesRequest(app_id=app_id, updates=updates))

    async def to_decision(app_id: str, kind: str, payloads: list[bytes]) -> None:
        events = [common_pb2.Event.FromString(p) for p in payloads]
        await decision.call(dec_stub.ApplyEvents, decision_internal.ApplyEventsRequest(app_id=app_id, events=events))

    return {"segmentation": to_segmentation, "decision": to_decision}


async def wire(host: ServiceHost) -> None:
    ingestion_service_pb2_grpc.add_IngestionServiceServicer_to_server(
        IngestionServicer(host.pool, host.clock, host.peers), host.server)
    dispatcher = OutboxDispatcher(host.pool, _senders(host))
    host.listener(OUTBOX_CHANNEL, dispatcher.wake)
    host.run_in_background(dispatcher.run(), "outbox")


SPEC = ServiceSpec(
    name="ingestion",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(ingestion_service_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name,),
    wire=wire,
    peers=("segmentation", "decision", "delivery"),
)
