"""DecisionService and DecisionInternalService handlers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import asyncpg
import grpc
import structlog
from google.protobuf import timestamp_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as delivery_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_grpc
from nudgelib.calls import current_app_id
from nudgelib.clients import Peer
from nudgelib.db import unreachable
from nudgelib import templates
from nudgelib.errors import Aborted, FailedPrecondition, FieldViolation, InvalidArgument, NotFound, NudgeError
from nudgelib.eventlog import positions
from nudgelib.keys import key_problems
from nudgelib.pagination import decode_token, encode_token, page_size
from nudgelib.protoconv import to_datetime, to_timedelta, to_timestamp
from nudgelib.replay import Remember, Replays, keeping
from nudgelib.timezones import is_valid_time_zone
from nudgelib.tracing import child_span
from services.decision import preview, store
from services.decision.decider import Decider
from services.decision.model import DEFAULT_TTL
from services.decision.references import segment_references, uses_segment
from services.decision.reservations import ReservationBatch
from services.decision.validation import campaign_violations, settings_violations

log = structlog.get_logger(__name__)
MAX_PULL = 10
MAX_BATCH = 256


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, decider: Decider, replays: Replays, segmentation: Peer, delivery: Peer) -> None:
        self._d = decider
        self._replays = replays
        self._segmentation = segmentation
        self._segments = seg_grpc.SegmentationInternalServiceStub(segmentation.channel)
        self._delivery = delivery
        self._inboxes = delivery_grpc.DeliveryInternalServiceStub(delivery.channel)

    async def _check_segments(self, app_id: str, campaign: pb.Campaign) -> None:
        """Every segment the campaign names is one of the app's: segmentation answers for
        all of them in one call. Unknown ids, and other apps' ids, are named field by field."""
        refs = segment_references(campaign)
        if not refs:
            return
        ids = list(dict.fromkeys(s for _, s in refs))
        found = await self._segmentation.ask(self._segments.CheckSegments,
                                             seg_pb.CheckSegmentsRequest(app_id=app_id, segment_ids=ids),
                                             "check the campaign's segments")
        known = set(found.existing_segment_ids)
        problems = [FieldViolation(path, f"no segment {s!r} in this app") for path, s in refs if s not in known]
        if problems:
            raise InvalidArgument(problems)

    async def CreateCampaign(self, request: pb.CreateCampaignRequest, context) -> pb.CreateCampaignResponse:
        app_id = current_app_id()
        campaign = pb.Campaign()
        campaign.CopyFrom(request.campaign)
        if campaign.status == pb.CAMPAIGN_STATUS_UNSPECIFIED:
            campaign.status = pb.CAMPAIGN_STATUS_DRAFT
        _check(campaign)

        async def call(remember: Remember | None) -> pb.CreateCampaignResponse:
            await self._check_segments(app_id, campaign)
            saved = await store.create_campaign(self._d.pool, app_id, campaign,
                                                keeping(remember, lambda c: pb.CreateCampaignResponse(campaign=c)), self._d.clock.now())
            self._d.catalog.invalidate(app_id)
            return pb.CreateCampaignResponse(campaign=saved)

        return await self._replays.once(app_id, "CreateCampaign", request, pb.CreateCampaignResponse, call)

    async def UpdateCampaign(self, request: pb.UpdateCampaignRequest, context) -> pb.UpdateCampaignResponse:
        app_id = current_app_id()

        async def call(remember: Remember | None) -> pb.UpdateCampaignResponse:
            existing = await _existing(self._d.pool, app_id, request.campaign.id, "campaign.id")
            campaign = pb.Campaign()
            campaign.CopyFrom(request.campaign)
            if campaign.status == pb.CAMPAIGN_STATUS_UNSPECIFIED:
                campaign.status = existing.status
            _check(campaign)
            await self._check_segments(app_id, campaign)
            saved = await store.save_version(self._d.pool, app_id, campaign, request.expected_version,
                                             keeping(remember, lambda c: pb.UpdateCampaignResponse(campaign=c)), self._d.clock.now())
            if saved is None:
                raise Aborted(f"campaign is no longer at version {request.expected_version}")
            self._d.catalog.invalidate(app_id)
            return pb.UpdateCampaignResponse(campaign=saved)

        return await self._replays.once(app_id, "UpdateCampaign", request, pb.UpdateCampaignResponse, call)

    async def GetCampaign(self, request: pb.GetCampaignRequest, context) -> pb.GetCampaignResponse:
        app_id = current_app_id()
        if request.campaign_id and request.key:
            raise InvalidArgument.field("key", "give campaign_id or key, not both")
        campaign_id = request.campaign_id
        if request.key:
            _check_key(request.key)
            campaign_id = await store.campaign_id_by_key(self._d.pool, app_id, request.key)
            if campaign_id is None:
                raise NotFound(f"no campaign with key {request.key!r} that is not archived")
        elif not campaign_id:
            raise InvalidArgument.field("campaign_id", "is required (or key)")
        campaign = await store.get_campaign(self._d.pool, app_id, campaign_id, request.version)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id!r} (version {request.version or 'latest'}) not found")
        return pb.GetCampaignResponse(campaign=campaign)

    async def ListCampaigns(self, request: pb.ListCampaignsRequest, context) -> pb.ListCampaignsResponse:
        size = page_size(request.page_size)
        _check_key(request.key)
        rows = await store.list_campaigns(self._d.pool, current_app_id(), request.page_token, size + 1, request.status,
                                          request.key)
        more = len(rows) > size
        rows = rows[:size]
        return pb.ListCampaignsResponse(campaigns=rows, next_page_token=rows[-1].id if more else "")

    async def SetCampaignStatus(self, request: pb.SetCampaignStatusRequest, context) -> pb.SetCampaignStatusResponse:
        app_id = current_app_id()
        if request.status == pb.CAMPAIGN_STATUS_UNSPECIFIED:
            raise InvalidArgument.field("status", "is required")

        async def call(remember: Remember | None) -> pb.SetCampaignStatusResponse:
            campaign = await _existing(self._d.pool, app_id, request.campaign_id, "campaign_id")
            if campaign.status == request.status:
                return pb.SetCampaignStatusResponse(campaign=campaign)
            if campaign.status == pb.CAMPAIGN_STATUS_ARCHIVED:
                raise InvalidArgument.field("status", "an archived campaign cannot change status")
            campaign.status = request.status
            saved = await store.save_version(self._d.pool, app_id, campaign, campaign.version,
                                             keeping(remember, lambda c: pb.SetCampaignStatusResponse(campaign=c)), self._d.clock.now())
            if saved is None:
                raise Aborted("campaign changed meanwhile; retry")
            self._d.catalog.invalidate(app_id)
            return pb.SetCampaignStatusResponse(campaign=saved)

        return await self._replays.once(app_id, "SetCampaignStatus", request, pb.SetCampaignStatusResponse, call)

    async def ExplainDecision(self, request: pb.ExplainDecisionRequest, context) -> pb.ExplainDecisionResponse:
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        return await self._d.explain(current_app_id(), request.user_id, request.context)

    async def ListPendingSends(self, request: pb.ListPendingSendsRequest, context) -> pb.ListPendingSendsResponse:
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        size = page_size(request.page_size)
        sends = await self._d.list_pending_sends(current_app_id(), request.user_id,
                                                 _send_cursor(request.page_token), size + 1)
        more = len(sends) > size
        sends = sends[:size]
        token = encode_token(sends[-1].trigger_time.ToJsonString(), sends[-1].id) if more else ""
        return pb.ListPendingSendsResponse(pending_sends=sends, next_page_token=token)

    async def _message_of(self, app_id: str, campaign_id: str, version: int, variant_id: str, locale: str,
                          user_id: str, attributes=None) -> tuple[pb.Campaign, pb.Variant, pb.LocalizedContent,
                                                                  common_pb2.UserContext]:
        """The campaign (at `version`, 0 the latest), the variant and content a pull would
        show `user_id` (segmentation's context, `attributes` over it), and that context."""
        campaign = await store.get_campaign(self._d.pool, app_id, campaign_id, version)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id!r} (version {version or 'latest'}) not found")
        variant = preview.variant_of(campaign, variant_id)
        if variant is None:
            raise InvalidArgument.field("variant_id", f"the campaign has no variant {variant_id!r}")
        known = await self._d.contexts.get(app_id, user_id, fresh=True) if user_id else common_pb2.UserContext()
        user = preview.preview_user(known, user_id, attributes or {})
        settings = (await self._d.catalog.get(app_id)).settings
        return campaign, variant, preview.content_for(variant, locale, user, settings), user

    async def PreviewMessage(self, request: pb.PreviewMessageRequest, context) -> pb.PreviewMessageResponse:
        problems = preview.request_problems(request.campaign_id, request.user_id, request.locale, False,
                                            len(request.attributes))
        if problems:
            raise InvalidArgument(problems)
        campaign, variant, chosen, user = await self._message_of(
            current_app_id(), request.campaign_id, request.version, request.variant_id, request.locale,
            request.user_id, request.attributes)
        rendered, errors = templates.render_report(chosen.content, templates.variables(
            user, request.event_properties if request.HasField("event_properties") else None))
        return pb.PreviewMessageResponse(
            campaign_id=campaign.id, campaign_version=campaign.version, variant_id=variant.id, locale=chosen.locale,
            content=rendered, errors=[pb.TemplateError(field=f, message=m) for f, m in errors], user=user)

    async def SendTestMessage(self, request: pb.SendTestMessageRequest, context) -> pb.SendTestMessageResponse:
        app_id = current_app_id()
        problems = preview.request_problems(request.campaign_id, request.user_id, request.locale, True)
        if problems:
            raise InvalidArgument(problems)
        # With the user: the response holds the content rendered with their attributes, which
        # their erasure must remove.
        return await self._replays.once(app_id, "SendTestMessage", request, pb.SendTestMessageResponse,
                                        lambda _remember: self._send_test(app_id, request), user_id=request.user_id)

    async def _send_test(self, app_id: str, request: pb.SendTestMessageRequest) -> pb.SendTestMessageResponse:
        campaign, variant, chosen, user = await self._message_of(
            app_id, request.campaign_id, 0, request.variant_id, request.locale, request.user_id)
        event = request.event_properties if request.HasField("event_properties") else None
        try:
            # Delivery's own rendering, here: a test message goes to the client without a Decide.
            content = templates.render(chosen.content, templates.variables(user, event))
        except templates.RenderError as exc:
            raise FailedPrecondition(f"the template of {exc.field} failed for user {request.user_id!r}: "
                                     f"{str(exc.__cause__).splitlines()[0]}; nothing was sent") from None
        now = self._d.clock.now()
        message = internal_pb.Decision(
            message_id=f"test_{uuid.uuid4().hex}", campaign_id=campaign.id, campaign_version=campaign.version,
            variant_id=variant.id, content=content, locale=chosen.locale,
            expire_time=to_timestamp(now + (to_timedelta(campaign.message_ttl) or DEFAULT_TTL)), test=True)
        if event is not None:
            message.event_properties.CopyFrom(event)
        await self._delivery.call(self._inboxes.EnqueueMessages, delivery_pb.EnqueueMessagesRequest(
            app_id=app_id, user_id=request.user_id, decisions=[message]))
        return pb.SendTestMessageResponse(message_id=message.message_id, variant_id=variant.id, locale=chosen.locale,
                                          content=content, expire_time=message.expire_time)

    async def GetAppSettings(self, request: pb.GetAppSettingsRequest, context) -> pb.GetAppSettingsResponse:
        return pb.GetAppSettingsResponse(settings=await store.get_settings(self._d.pool, current_app_id()))

    async def UpdateAppSettings(self, request: pb.UpdateAppSettingsRequest, context) -> pb.UpdateAppSettingsResponse:
        app_id = current_app_id()
        settings = pb.AppSettings()
        settings.CopyFrom(request.settings)
        if not settings.default_time_zone:
            settings.default_time_zone = "UTC"
        problems = settings_violations(settings, is_valid_time_zone)
        if problems:
            raise InvalidArgument(problems)
        response = pb.UpdateAppSettingsResponse(settings=settings)

        async def call(remember: Remember | None) -> pb.UpdateAppSettingsResponse:
            keep = None if remember is None else (lambda conn: remember(conn, response))
            await store.put_settings(self._d.pool, app_id, settings, keep)
            self._d.catalog.invalidate(app_id)
            return response

        return await self._replays.once(app_id, "UpdateAppSettings", request, pb.UpdateAppSettingsResponse, call)


class DecisionInternalServicer(internal_grpc.DecisionInternalServiceServicer):
    def __init__(self, decider: Decider) -> None:
        self._d = decider

    async def ApplyEvents(self, request: internal_pb.ApplyEventsRequest, context) -> internal_pb.ApplyEventsResponse:
        positions.require_span(request.span, len(request.events))
        applied = await self._d.apply_events(request.app_id, list(request.events), request.span)
        return internal_pb.ApplyEventsResponse(applied_count=applied)

    async def ApplyUserChanges(self, request: internal_pb.ApplyUserChangesRequest,
                               context) -> internal_pb.ApplyUserChangesResponse:
        await self._d.apply_user_changes(request)
        return internal_pb.ApplyUserChangesResponse()

    async def Decide(self, request: internal_pb.DecideRequest, context) -> internal_pb.DecideResponse:
        limit = _pull_limit(request, "")
        return await self._d.decide(request.app_id, request.user_id, request.context, limit,
                                   list(request.pending), request.pending_only)

    async def DecideBatch(self, request: internal_pb.DecideBatchRequest, context) -> internal_pb.DecideBatchResponse:
        if len(request.requests) > MAX_BATCH:
            raise InvalidArgument.field("requests", f"at most {MAX_BATCH}")
        results: list[internal_pb.DecideResult | None] = [None] * len(request.requests)
        pulls = []
        for i, r in enumerate(request.requests):
            try:
                pulls.append((i, r, _pull_limit(r, f"requests[{i}].")))
            except NudgeError as exc:
                results[i] = _error_result(exc)
        # The pulls' reservations are written in one transaction (services.decision.reservations).
        batch = self._d.batch(len(pulls))
        decided = await asyncio.gather(*(self._decide_one(r, limit, batch) for _, r, limit in pulls))
        for (i, _, _), result in zip(pulls, decided):
            results[i] = result
        return internal_pb.DecideBatchResponse(results=results)

    async def _decide_one(self, request: internal_pb.DecideRequest, limit: int,
                          batch: ReservationBatch) -> internal_pb.DecideResult:
        try:
            # With tracing on, each pull of the batch has its span (attributes of its own).
            with child_span("decide"):
                return internal_pb.DecideResult(response=await self._d.decide(
                    request.app_id, request.user_id, request.context, limit, list(request.pending),
                    request.pending_only, batch))
        except NudgeError as exc:
            return _error_result(exc)
        except Exception as exc:  # noqa: BLE001 - one request's bug must not fail the batch
            if unreachable(exc):  # the database is away: the caller retries (as the interceptor says)
                return internal_pb.DecideResult(error=internal_pb.DecideError(
                    code=grpc.StatusCode.UNAVAILABLE.value[0], message="the database is not reachable; retry shortly"))
            log.exception("decide_failed", user_id=request.user_id)
            return internal_pb.DecideResult(error=internal_pb.DecideError(
                code=grpc.StatusCode.INTERNAL.value[0], message="internal error"))

    async def EraseUser(self, request: internal_pb.EraseUserRequest, context) -> internal_pb.EraseUserResponse:
        await self._d.erase_user(request.app_id, request.user_id)
        return internal_pb.EraseUserResponse()

    async def GetCampaignDefinition(self, request: internal_pb.GetCampaignDefinitionRequest,
                                    context) -> internal_pb.GetCampaignDefinitionResponse:
        campaign = await _existing(self._d.pool, request.app_id, request.campaign_id, "campaign_id")
        catalog = await self._d.catalog.get(request.app_id)
        return internal_pb.GetCampaignDefinitionResponse(
            campaign=campaign, time_zone=catalog.settings.default_time_zone or "UTC")

    async def ReleaseReservations(self, request: internal_pb.ReleaseReservationsRequest,
                                  context) -> internal_pb.ReleaseReservationsResponse:
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        if len(request.message_ids) > MAX_BATCH:
            raise InvalidArgument.field("message_ids", f"at most {MAX_BATCH}")
        released = await self._d.release_reservations(request.app_id, request.user_id, list(request.message_ids))
        return internal_pb.ReleaseReservationsResponse(released_count=released)

    async def CampaignsUsingSegment(self, request: internal_pb.CampaignsUsingSegmentRequest,
                                    context) -> internal_pb.CampaignsUsingSegmentResponse:
        if not request.app_id or not request.segment_id:
            raise InvalidArgument.field("segment_id" if request.app_id else "app_id", "is required")
        campaigns = await store.unarchived_campaigns(self._d.pool, request.app_id)
        return internal_pb.CampaignsUsingSegmentResponse(campaigns=[
            internal_pb.CampaignUsingSegment(campaign_id=c.id, name=c.name, status=c.status)
            for c in campaigns if uses_segment(c, request.segment_id)])


def _pull_limit(request: internal_pb.DecideRequest, prefix: str) -> int:
    """The pull's limit, once its request is one decision can decide."""
    if not request.app_id:  # else segmentation refuses the context lookup, an INTERNAL here
        raise InvalidArgument.field(f"{prefix}app_id", "is required")
    if not request.user_id:
        raise InvalidArgument.field(f"{prefix}user_id", "is required")
    return min(request.limit or 1, MAX_PULL)


def _error_result(exc: NudgeError) -> internal_pb.DecideResult:
    return internal_pb.DecideResult(error=internal_pb.DecideError(code=exc.code.value[0], message=exc.message))


def _send_cursor(token: str) -> tuple[datetime, str] | None:
    """A ListPendingSends page token: the last send's trigger time and id."""
    if not token:
        return None
    try:
        at, send_id = decode_token(token, 2)
        stamp = timestamp_pb2.Timestamp()
        stamp.FromJsonString(at)
    except ValueError:
        raise InvalidArgument.field("page_token", "is not a token this RPC returned") from None
    return to_datetime(stamp), send_id


def _check_key(key: str) -> None:
    problems = key_problems(key, "key")
    if problems:
        raise InvalidArgument(problems)


def _check(campaign: pb.Campaign) -> None:
    problems = campaign_violations(campaign)
    if problems:
        raise InvalidArgument(problems)


async def _existing(pool: asyncpg.Pool, app_id: str, campaign_id: str, field: str) -> pb.Campaign:
    if not campaign_id:
        raise InvalidArgument.field(field, "is required")
    campaign = await store.get_campaign(pool, app_id, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id!r} not found")
    return campaign
