"""DeliveryService and DeliveryInternalService handlers."""

from __future__ import annotations

import asyncpg

from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_grpc
from nudge.decision.v1 import decision_service_pb2 as decision_public_pb
from nudge.delivery.v1 import delivery_internal_service_pb2 as internal_pb
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as internal_grpc
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as pb_grpc
from nudgelib.calls import current_app_id
from nudgelib.clients import Peer
from nudgelib.clock import Clock
from nudgelib.errors import FieldViolation, InvalidArgument, NotFound
from nudgelib.protoconv import optional_datetime, to_datetime
from services.delivery import store
from services.delivery.stats import variant_stats

MAX_LIMIT = 10
MAX_USER_ID = 256


class DeliveryServicer(pb_grpc.DeliveryServiceServicer):
    def __init__(self, pool: asyncpg.Pool, clock: Clock, decision: Peer) -> None:
        self._pool = pool
        self._clock = clock
        self._decision = decision
        self._decision_stub = decision_grpc.DecisionInternalServiceStub(decision.channel)

    async def FetchMessages(self, request: pb.FetchMessagesRequest, context) -> pb.FetchMessagesResponse:
        app_id = current_app_id()
        problems = _user_violations(request.user_id)
        if request.limit > MAX_LIMIT:
            problems.append(FieldViolation("limit", f"at most {MAX_LIMIT}"))
        if problems:
            raise InvalidArgument(problems)
        decided = await self._decision.call(self._decision_stub.Decide, decision_pb.DecideRequest(
            app_id=app_id,
            user_id=request.user_id,
            context=decision_public_pb.RequestContext(
                platform=request.platform, screen=request.screen,
                app_version=request.app_version, locale=request.locale),
            limit=request.limit or 1,
        ))
        if not decided.decisions:
            return pb.FetchMessagesResponse()
        await store.save_delivered(self._pool, app_id, request.user_id, self._clock.now(), list(decided.decisions))
        return pb.FetchMessagesResponse(messages=[
            pb.InAppMessage(
                message_id=d.message_id, campaign_id=d.campaign_id, campaign_version=d.campaign_version,
                variant_id=d.variant_id, content=d.content, locale=d.locale, expire_time=d.expire_time)
            for d in decided.decisions
        ])

    async def ReportInteraction(self, request: pb.ReportInteractionRequest, context) -> pb.ReportInteractionResponse:
        app_id = current_app_id()
        problems = _user_violations(request.user_id)
        if not request.message_id:
            problems.append(FieldViolation("message_id", "is required"))
        if request.type == pb.INTERACTION_TYPE_UNSPECIFIED:
            problems.append(FieldViolation("type", "is required"))
        if problems:
            raise InvalidArgument(problems)
        message = await store.get_message(self._pool, app_id, request.message_id)
        if message is None or message.user_id != request.user_id:
            raise NotFound(f"message {request.message_id!r} was not sent to user {request.user_id!r}")
        button_id = ""
        answers = None
        if request.type == pb.INTERACTION_TYPE_CLICK:
            buttons = {b.id for b in message.content.buttons} | {
                b.id for s in message.content.slides for b in s.buttons}
            if request.button_id not in buttons:
                raise InvalidArgument.field("button_id", f"the message has no button {request.button_id!r}")
            button_id = request.button_id
        elif request.type == pb.INTERACTION_TYPE_SURVEY_ANSWER:
            questions = {q.id for q in message.content.questions}
            if not request.answers:
                raise InvalidArgument.field("answers", "a survey answer needs at least one answer")
            for i, answer in enumerate(request.answers):
                if answer.question_id not in questions:
                    raise InvalidArgument.field(f"answers[{i}].question_id",
                                                f"the message has no question {answer.question_id!r}")
            answers = pb.ReportInteractionRequest(answers=request.answers).SerializeToString()
        at = optional_datetime(request, "occurred_time") or self._clock.now()
        recorded = await store.record_interaction(
            self._pool, app_id, message.message_id, request.type, button_id, answers, at)
        return pb.ReportInteractionResponse(recorded=recorded)

    async def GetCampaignStats(self, request: pb.GetCampaignStatsRequest, context) -> pb.GetCampaignStatsResponse:
        app_id = current_app_id()
        if not request.campaign_id:
            raise InvalidArgument.field("campaign_id", "is required")
        counts = await store.campaign_counts(
            self._pool, app_id, request.campaign_id,
            optional_datetime(request, "start_time"), optional_datetime(request, "end_time"))
        return pb.GetCampaignStatsResponse(variants=[variant_stats(c) for c in counts])


class DeliveryInternalServicer(internal_grpc.DeliveryInternalServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def EraseUser(self, request: internal_pb.EraseUserRequest, context) -> internal_pb.EraseUserResponse:
        await store.erase_user(self._pool, request.app_id, request.user_id)
        return internal_pb.EraseUserResponse()


def _user_violations(user_id: str) -> list[FieldViolation]:
    if not user_id:
        return [FieldViolation("user_id", "is required")]
    if len(user_id) > MAX_USER_ID:
        return [FieldViolation("user_id", f"is longer than {MAX_USER_ID} characters")]
    return []
