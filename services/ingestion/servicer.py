"""IngestionService handlers: translate protos to store calls, nothing else."""

from __future__ import annotations

import uuid

import grpc

from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_internal_grpc
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_internal
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as delivery_internal_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudgelib.calls import current_app_id
from nudgelib.clients import Peer
from nudgelib.clock import Clock
from nudgelib.errors import FieldViolation, InvalidArgument
from nudgelib.protoconv import to_datetime, to_timestamp
from services.ingestion import store
from services.ingestion.validation import MAX_BATCH, check_event, profile_violations


class IngestionServicer(pb_grpc.IngestionServiceServicer):
    def __init__(self, pool, clock: Clock, peers: dict[str, Peer]) -> None:
        self._pool = pool
        self._clock = clock
        self._peers = peers
        self._segmentation = seg_internal_grpc.SegmentationInternalServiceStub(peers["segmentation"].channel)
        self._decision = decision_internal_grpc.DecisionInternalServiceStub(peers["decision"].channel)
        self._delivery = delivery_internal_grpc.DeliveryInternalServiceStub(peers["delivery"].channel)

    async def _accept(self, app_id: str, events) -> tuple[int, int, list[pb.RejectedEvent]]:
        if len(events) == 0:
            raise InvalidArgument.field("events", "must hold at least one event")
        if len(events) > MAX_BATCH:
            raise InvalidArgument.field("events", f"at most {MAX_BATCH} events per batch")
        now = self._clock.now()
        rejected: list[pb.RejectedEvent] = []
        fresh, occurred, seen = [], [], set()
        duplicates_in_batch = 0
        for index, event in enumerate(events):
            problem = check_event(event, now)
            if problem is not None:
                rejected.append(pb.RejectedEvent(index=index, reason=problem.reason, message=problem.message))
                continue
            if event.event_id in seen:
                duplicates_in_batch += 1
                continue
            seen.add(event.event_id)
            if not event.HasField("occurred_time"):
                event.occurred_time.CopyFrom(to_timestamp(now))
            fresh.append(event)
            occurred.append(to_datetime(event.occurred_time))
        inserted = await store.insert_events(self._pool, app_id, fresh, occurred)
        accepted = len(fresh) + duplicates_in_batch
        return accepted, accepted - inserted, rejected

    async def TrackEvents(self, request: pb.TrackEventsRequest, context) -> pb.TrackEventsResponse:
        accepted, duplicates, rejected = await self._accept(current_app_id(), request.events)
        return pb.TrackEventsResponse(accepted_count=accepted, duplicate_count=duplicates, rejected=rejected)

    async def StreamEvents(self, request_iterator, context):
        app_id = current_app_id()
        async for batch in request_iterator:
            accepted, duplicates, rejected = await self._accept(app_id, batch.events)
            yield pb.StreamEventsResponse(
                batch_id=batch.batch_id, accepted_count=accepted, duplicate_count=duplicates, rejected=rejected
            )

    async def Identify(self, request: pb.IdentifyRequest, context) -> pb.IdentifyResponse:
        app_id = current_app_id()
        problems = profile_violations(
            request.user_id, dict(request.attributes), list(request.unset_attributes),
            request.time_zone, request.locale,
        )
        if problems:
            raise InvalidArgument([FieldViolation(f, d) for f, d in problems])
        update = seg_internal.ProfileUpdate(
            update_id=request.request_id or uuid.uuid4().hex,
            user_id=request.user_id,
            attributes=request.attributes,
            unset_attributes=request.unset_attributes,
            time_zone=request.time_zone,
            locale=request.locale,
            occurred_time=request.occurred_time if request.HasField("occurred_time") else to_timestamp(self._clock.now()),
        )
        await store.queue_profile_update(self._pool, app_id, request.user_id, update.SerializeToString())
        return pb.IdentifyResponse()

    async def DeleteUser(self, request: pb.DeleteUserRequest, context) -> pb.DeleteUserResponse:
        app_id = current_app_id()
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        await store.erase_user(self._pool, app_id, request.user_id)
        # Each erase is idempotent; a service that is down makes the call fail UNAVAILABLE and
        # the caller retries the whole deletion.
        await self._peers["segmentation"].call(
            self._segmentation.EraseUser, seg_internal.EraseUserRequest(app_id=app_id, user_id=request.user_id))
        await self._peers["decision"].call(
            self._decision.EraseUser, decision_internal.EraseUserRequest(app_id=app_id, user_id=request.user_id))
        await self._peers["delivery"].call(
            self._delivery.EraseUser, delivery_internal.EraseUserRequest(app_id=app_id, user_id=request.user_id))
        return pb.DeleteUserResponse(completed=True)
