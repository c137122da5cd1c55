"""IngestionService handlers: translate protos to store calls, nothing else."""

from __future__ import annotations

import uuid

from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_internal_grpc
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_internal
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as delivery_internal_grpc
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as internal_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as internal_pb_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudgelib.calls import current_app_id
from nudgelib.clients import Peer
from nudgelib.clock import Clock
from nudgelib.errors import FieldViolation, InvalidArgument, Unavailable
from nudgelib.eventlog.framing import varint
from nudgelib.eventlog.lanes import lane_of
from nudgelib.protoconv import to_timestamp
from services.ingestion import reads, store
from services.ingestion.intake import Intake
from services.ingestion.keys import update_id
from services.ingestion.validation import profile_violations, user_id_problem


class IngestionServicer(pb_grpc.IngestionServiceServicer):
    def __init__(self, pool, clock: Clock, peers: dict[str, Peer], intake: Intake) -> None:
        self._pool = pool
        self._clock = clock
        self._peers = peers
        self._intake = intake
        self._segmentation = seg_internal_grpc.SegmentationInternalServiceStub(peers["segmentation"].channel)
        self._decision = decision_internal_grpc.DecisionInternalServiceStub(peers["decision"].channel)
        self._delivery = delivery_internal_grpc.DeliveryInternalServiceStub(peers["delivery"].channel)

    async def TrackEvents(self, request: pb.TrackEventsRequest, context) -> pb.TrackEventsResponse:
        accepted, duplicates, rejected = await self._intake.accept(current_app_id(), request.events)
        return pb.TrackEventsResponse(accepted_count=accepted, duplicate_count=duplicates, rejected=rejected)

    async def StreamEvents(self, request_iterator, context):
        # Batches are committed one after the other, so a producer's batches reach consumers
        # in the order it sent them. A refusal (bad batch, backpressure) ends the stream; the
        # producer resends what was not acknowledged, which event ids make harmless.
        app_id = current_app_id()
        async for batch in request_iterator:
            accepted, duplicates, rejected = await self._intake.accept(app_id, batch.events)
            yield pb.StreamEventsResponse(
                batch_id=batch.batch_id, accepted_count=accepted, duplicate_count=duplicates, rejected=rejected
            )

    async def Identify(self, request: pb.IdentifyRequest, context) -> pb.IdentifyResponse:
        app_id = current_app_id()
        problems = profile_violations(
            request.user_id, dict(request.attributes), list(request.unset_attributes),
            request.time_zone, request.locale,
            request.occurred_time if request.HasField("occurred_time") else None, request.request_id,
        )
        if problems:
            raise InvalidArgument([FieldViolation(f, d) for f, d in problems])
        self._intake.check_pressure(app_id)
        update = seg_internal.ProfileUpdate(
            update_id=update_id(request.user_id, request.request_id) if request.request_id else uuid.uuid4().hex,
            user_id=request.user_id,
            attributes=request.attributes,
            unset_attributes=request.unset_attributes,
            time_zone=request.time_zone,
            locale=request.locale,
            occurred_time=request.occurred_time if request.HasField("occurred_time") else to_timestamp(self._clock.now()),
        )
        if await store.queue_profile_update(self._pool, app_id, update.update_id, request.user_id,
                                            lane_of(app_id, request.user_id), update.SerializeToString(),
                                            self._clock.now(), self._intake.trace_context()):
            self._intake.queued()
        return pb.IdentifyResponse()

    async def DeleteUser(self, request: pb.DeleteUserRequest, context) -> pb.DeleteUserResponse:
        app_id = current_app_id()
        if (problem := user_id_problem(request.user_id)) is not None:
            raise InvalidArgument.field("user_id", problem)
        user_id = request.user_id
        lane = lane_of(app_id, user_id)
        # First here, so nothing of the user is left to forward; then the others.
        await store.erase_user(self._pool, app_id, user_id, lane)
        await self._erase_downstream(app_id, user_id)
        # Delivery's interactions are the one flow back into ingestion: one that delivery was
        # sending as this began reached ingestion after its erasure (delivery's erasure waited
        # for it, so it has arrived by now), and may have gone on to the others. Once more.
        if await store.erase_user(self._pool, app_id, user_id, lane):
            await self._erase_downstream(app_id, user_id)
        return pb.DeleteUserResponse(completed=True)

    async def _erase_downstream(self, app_id: str, user_id: str) -> None:
        """The other services, in the order items flow between them (segmentation announces
        to decision, decision hands messages to delivery): each erasure waits for its own
        readers, so what a service sent before its erasure is at the next one before that
        one's erasure, and nothing is sent after."""
        await self._erase("segmentation", self._segmentation.EraseUser,
                          seg_internal.EraseUserRequest(app_id=app_id, user_id=user_id))
        await self._erase("decision", self._decision.EraseUser,
                          decision_internal.EraseUserRequest(app_id=app_id, user_id=user_id))
        await self._erase("delivery", self._delivery.EraseUser,
                          delivery_internal.EraseUserRequest(app_id=app_id, user_id=user_id))

    async def _erase(self, peer: str, method, request) -> None:
        try:
            await self._peers[peer].call(method, request)
        except Unavailable:
            raise Unavailable(f"{peer} could not be reached to erase the user; every step is idempotent, "
                              "retry DeleteUser to finish") from None


class IngestionInternalServicer(internal_pb_grpc.IngestionInternalServiceServicer):
    """Events from other Nudge services (delivery's interaction events), taken exactly like
    TrackEvents for the app named in the request; and stored events read back (ReadEvents)."""

    def __init__(self, intake: Intake, pool) -> None:
        self._intake = intake
        self._pool = pool

    async def ReadEvents(self, request: internal_pb.ReadEventsRequest, context):
        query: reads.Query | None = reads.parse(request)
        while query is not None:
            page = await reads.read_page(self._pool, query)
            query = page.next
            # The stored bytes framed as the records of `events` (field 1) and parsed once.
            reply = internal_pb.ReadEventsResponse.FromString(
                b"".join(b"\x0a" + varint(len(p)) + p for p in page.payloads))
            reply.next_page_token = query.token if query is not None else ""
            yield reply

    async def IngestEvents(self, request: internal_pb.IngestEventsRequest, context) -> internal_pb.IngestEventsResponse:
        if not request.app_id:
            raise InvalidArgument.field("app_id", "is required")
        accepted, _, rejected = await self._intake.accept(request.app_id, request.events)
        return internal_pb.IngestEventsResponse(accepted_count=accepted, rejected_count=len(rejected),
                                                rejected=rejected)
