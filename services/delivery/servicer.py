"""DeliveryService and DeliveryInternalService handlers."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import asyncpg
from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_public_pb
from nudge.delivery.v1 import delivery_internal_service_pb2 as internal_pb
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as internal_grpc
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as pb_grpc
from nudgelib.calls import current_app_id
from nudgelib.clock import Clock
from nudgelib.errors import FieldViolation, InvalidArgument, NotFound
from nudgelib.event_times import FUTURE_RULE, MAX_FUTURE_SKEW
from nudgelib.protoconv import optional_datetime, to_timestamp
from nudgelib.pagination import page_size
from nudgelib.tracing import annotate_user
from services.delivery import days, store, surveys
from services.delivery.campaigns import Campaigns
from services.delivery.handout import MAX_PER_CALL, Handout
from services.delivery.stats import campaign_stats, daily_stats, reason_name, variant_counts

MAX_USER_ID = 256

# The event each interaction becomes, so campaigns can trigger on it (series, follow-ups).
INTERACTION_EVENTS = {
    pb.INTERACTION_TYPE_IMPRESSION: "message_impression",
    pb.INTERACTION_TYPE_CLICK: "message_clicked",
    pb.INTERACTION_TYPE_DISMISS: "message_dismissed",
    pb.INTERACTION_TYPE_SURVEY_ANSWER: "survey_answered",
}


def interaction_event(message: store.StoredMessage, request: pb.ReportInteractionRequest, at) -> common_pb2.Event:
    properties = struct_pb2.Struct()
    properties.update({"campaign_id": message.campaign_id, "variant_id": message.variant_id,
                       "message_id": message.message_id})
    if request.button_id:
        properties.update({"button_id": request.button_id})
    if request.answers:
        properties.update({"answers": [{"question_id": a.question_id, "choices": list(a.choices),
                                        "rating": a.rating, "text": a.text} for a in request.answers]})
    name = INTERACTION_EVENTS[request.type]
    return common_pb2.Event(
        # Deterministic: a report retried after a crash becomes the same event, stored once.
        event_id=f"{message.message_id}:{name}:{request.button_id}", user_id=message.user_id, name=name,
        properties=properties, occurred_time=to_timestamp(at))


def _context(platform, app_version: str, locale: str, screen: str = "") -> decision_public_pb.RequestContext:
    return decision_public_pb.RequestContext(platform=platform, screen=screen, app_version=app_version, locale=locale)


class DeliveryServicer(pb_grpc.DeliveryServiceServicer):
    def __init__(self, pool: asyncpg.Pool, clock: Clock, handout: Handout, keepalive_seconds: float,
                 campaigns: Campaigns) -> None:
        self._pool = pool
        self._clock = clock
        self._handout = handout
        self._keepalive = keepalive_seconds
        self._campaigns = campaigns

    async def FetchMessages(self, request: pb.FetchMessagesRequest, context) -> pb.FetchMessagesResponse:
        app_id = current_app_id()
        problems = _user_violations(request.user_id)
        if request.limit > MAX_PER_CALL:
            problems.append(FieldViolation("limit", f"at most {MAX_PER_CALL}"))
        if problems:
            raise InvalidArgument(problems)
        messages = await self._handout.hand_out(
            app_id, request.user_id,
            _context(request.platform, request.app_version, request.locale, request.screen),
            request.limit or 1, "pull")
        annotate_user(app_id, request.user_id, {"nudge.messages": len(messages)})
        return pb.FetchMessagesResponse(messages=messages)

    async def Subscribe(self, request: pb.SubscribeRequest, context):
        app_id = current_app_id()
        problems = _user_violations(request.user_id)
        if problems:
            raise InvalidArgument(problems)
        # Headers at once: the client knows the stream is live before any message or
        # keep-alive, which may be up to a keep-alive interval away.
        await context.send_initial_metadata(())
        hub = self._handout.hub
        session = hub.open(app_id, request.user_id, _context(request.platform, request.app_version, request.locale))
        try:
            if request.last_message_id:
                for message in await self._handout.replay(app_id, request.user_id, request.last_message_id):
                    session.sent.add(message.message_id)
                    yield pb.SubscribeResponse(message=message)
            # What waited in the inbox goes now, through the same path as live pushes.
            asyncio.ensure_future(self._handout.offer_to_streams(app_id, request.user_id))
            while True:
                try:
                    # asyncio.timeout, unlike wait_for, adds no task per idle stream.
                    async with asyncio.timeout(self._keepalive):
                        message = await session.queue.get()
                except TimeoutError:
                    yield pb.SubscribeResponse(keep_alive_time=to_timestamp(self._clock.now()))
                    continue
                if message.message_id in session.sent:
                    continue
                session.sent.add(message.message_id)
                yield pb.SubscribeResponse(message=message)
        finally:
            hub.close(session)

    async def ReportInteraction(self, request: pb.ReportInteractionRequest, context) -> pb.ReportInteractionResponse:
        app_id = current_app_id()
        problems = _user_violations(request.user_id)
        if not request.message_id:
            problems.append(FieldViolation("message_id", "is required"))
        if request.type == pb.INTERACTION_TYPE_UNSPECIFIED:
            problems.append(FieldViolation("type", "is required"))
        now = self._clock.now()
        at = optional_datetime(request, "occurred_time") or now
        # Ingestion would refuse the interaction's event: the click would count, its event vanish.
        if at - now > MAX_FUTURE_SKEW:
            problems.append(FieldViolation("occurred_time", FUTURE_RULE))
        if problems:
            raise InvalidArgument(problems)
        message = await store.get_message(self._pool, app_id, request.user_id, request.message_id)
        if message is None or message.user_id != request.user_id or message.status != "delivered":
            raise NotFound(f"message {request.message_id!r} was not delivered to user {request.user_id!r}")
        button_id = ""
        answers = None
        if request.type == pb.INTERACTION_TYPE_CLICK:
            buttons = {b.id for b in message.content.buttons} | {
                b.id for s in message.content.slides for b in s.buttons}
            if request.button_id not in buttons:
                raise InvalidArgument.field("button_id", f"the message has no button {request.button_id!r}")
            button_id = request.button_id
        elif request.button_id:
            raise InvalidArgument.field("button_id", "only clicks name a button")
        if request.type == pb.INTERACTION_TYPE_SURVEY_ANSWER:
            questions = {q.id: q for q in message.content.questions}
            if not request.answers:
                raise InvalidArgument.field("answers", "a survey answer needs at least one answer")
            for i, answer in enumerate(request.answers):
                question = questions.get(answer.question_id)
                if question is None:
                    raise InvalidArgument.field(f"answers[{i}].question_id",
                                                f"the message has no question {answer.question_id!r}")
                unknown = set(answer.choices) - set(question.choices)
                if unknown:
                    raise InvalidArgument.field(f"answers[{i}].choices", f"not a choice: {sorted(unknown)[0]!r}")
                if question.max_rating and answer.rating > question.max_rating:
                    raise InvalidArgument.field(f"answers[{i}].rating", f"at most {question.max_rating}")
            answers = pb.ReportInteractionRequest(answers=request.answers).SerializeToString()
        elif request.answers:
            raise InvalidArgument.field("answers", "only survey answers carry answers")
        # A test message's interactions trigger nothing and change no segment: no event.
        event = None if message.test else interaction_event(message, request, at).SerializeToString()
        recorded = await store.record_interaction(
            self._pool, app_id, request.user_id, message.message_id, request.type, button_id, answers, at, event)
        return pb.ReportInteractionResponse(recorded=recorded)

    async def GetCampaignStats(self, request: pb.GetCampaignStatsRequest, context) -> pb.GetCampaignStatsResponse:
        app_id = current_app_id()
        if not request.campaign_id:
            raise InvalidArgument.field("campaign_id", "is required")
        has_times = request.HasField("start_time") or request.HasField("end_time")
        dates, problems = days.day_range(request.start_date, request.end_date, has_times)
        if problems:
            raise InvalidArgument(problems)
        found = await self._campaigns.definition(app_id, request.campaign_id)
        campaign, now = found.campaign, self._clock.now()
        start, end = optional_datetime(request, "start_time"), optional_datetime(request, "end_time")
        tz_name = found.time_zone or "UTC"
        if dates is not None:
            start, end = days.bounds(*dates, ZoneInfo(tz_name))
        messages, interactions = await store.campaign_rows(self._pool, app_id, request.campaign_id, start, end, now)
        counts = variant_counts(messages, interactions, [v.id for v in campaign.variants], campaign.control_weight > 0)
        reply = pb.GetCampaignStatsResponse(variants=campaign_stats(counts))
        if dates is not None:
            rows = await store.daily_rows(self._pool, app_id, request.campaign_id, start, end, now, tz_name)
            reply.days.extend(daily_stats(days.days(*dates), rows, counts))
            reply.time_zone = tz_name
        return reply

    async def ListSurveyAnswers(self, request: pb.ListSurveyAnswersRequest, context) -> pb.ListSurveyAnswersResponse:
        app_id = current_app_id()
        if not request.campaign_id:
            raise InvalidArgument.field("campaign_id", "is required")
        after = None
        if request.page_token:
            try:
                after = surveys.decode(request.page_token)
            except ValueError as exc:
                raise InvalidArgument.field("page_token", str(exc)) from exc
        await self._campaigns.get(app_id, request.campaign_id)
        size = page_size(request.page_size)
        # Each report holds at least one answer: size + 1 reports find the next page's first.
        rows = await store.survey_rows(
            self._pool, app_id, request.campaign_id, request.variant_id,
            optional_datetime(request, "start_time"), optional_datetime(request, "end_time"),
            (after.answered_at, after.message_id) if after else None, size + 1)
        answers, token = surveys.page(rows, after, size)
        return pb.ListSurveyAnswersResponse(answers=answers, next_page_token=token)


class DeliveryInternalServicer(internal_grpc.DeliveryInternalServiceServicer):
    def __init__(self, pool: asyncpg.Pool, clock: Clock, handout: Handout) -> None:
        self._pool = pool
        self._clock = clock
        self._handout = handout

    async def EnqueueMessages(self, request: internal_pb.EnqueueMessagesRequest, context):
        unsent = [store.Ended(u.message_id, u.campaign_id, u.campaign_version, u.variant_id,
                              "expired" if u.expired else "dropped", "" if u.expired else reason_name(u.reason))
                  for u in request.unsent]
        added = await store.enqueue(self._pool, request.app_id, request.user_id, self._clock.now(),
                                    list(request.decisions), list(request.control_exposures),
                                    self._handout.inbox_payload(request.app_id, request.user_id), unsent)
        if added:
            # This replica's streams first, without waiting for the notification's round trip.
            self._handout.inbox_changed(request.app_id, request.user_id)
            fresh = [d for d in request.decisions if d.message_id in set(added)]
            await self._handout.offer_to_streams(request.app_id, request.user_id, fresh)
        return internal_pb.EnqueueMessagesResponse()

    async def ApplyEvents(self, request: internal_pb.ApplyEventsRequest, context) -> internal_pb.ApplyEventsResponse:
        converted = await store.apply_events(self._pool, request.app_id, list(request.events))
        return internal_pb.ApplyEventsResponse(conversion_count=converted)

    async def EraseUser(self, request: internal_pb.EraseUserRequest, context) -> internal_pb.EraseUserResponse:
        await store.erase_user(self._pool, request.app_id, request.user_id)
        self._handout.inbox_changed(request.app_id, request.user_id)
        return internal_pb.EraseUserResponse()


def _user_violations(user_id: str) -> list[FieldViolation]:
    if not user_id:
        return [FieldViolation("user_id", "is required")]
    if len(user_id) > MAX_USER_ID:
        return [FieldViolation("user_id", f"is longer than {MAX_USER_ID} characters")]
    return []
