"""DecisionService and DecisionInternalService handlers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_grpc
from nudgelib.calls import current_app_id
from nudgelib.clients import Peer
from nudgelib.clock import Clock
from nudgelib.errors import Aborted, InvalidArgument, NotFound
from nudgelib.pagination import page_size
from nudgelib.protoconv import set_timestamp, to_timedelta, to_timestamp
from nudgelib.timezones import is_valid_time_zone
from services.decision import store
from services.decision.catalog import CampaignCatalog
from services.decision.eligibility import CONTROL, assign_variant, exclusion, pick_content, rank_key
from services.decision.validation import campaign_violations, settings_violations

DEFAULT_TTL = timedelta(hours=24)
MAX_PULL = 10


class Decider:
    """The pull path: user context, catalog, eligibility, variants, one commit."""

    def __init__(self, pool: asyncpg.Pool, catalog: CampaignCatalog, clock: Clock, segmentation: Peer) -> None:
        self.pool = pool
        self.catalog = catalog
        self.clock = clock
        self._segmentation = segmentation
        self._seg_stub = seg_grpc.SegmentationInternalServiceStub(segmentation.channel)

    async def user_context(self, app_id: str, user_id: str) -> common_pb2.UserContext:
        response = await self._segmentation.call(
            self._seg_stub.GetUserContext, seg_pb.GetUserContextRequest(app_id=app_id, user_id=user_id))
        return response.context

    async def decide(self, app_id: str, user_id: str, context: pb.RequestContext,
                     limit: int) -> internal_pb.DecideResponse:
        user = await self.user_context(app_id, user_id)
        catalog = await self.catalog.get(app_id)
        now = self.clock.now()
        decisions: list[internal_pb.Decision] = []
        for campaign in catalog.campaigns:
            if len(decisions) >= limit:
                break
            if exclusion(campaign, user, context, now) is not None:
                continue
            arm = assign_variant(campaign, user_id)
            if arm == CONTROL:
                continue
            variant = next(v for v in campaign.variants if v.id == arm)
            content = pick_content(variant, context.locale, user.locale, catalog.settings.default_locale)
            ttl = to_timedelta(campaign.message_ttl) or DEFAULT_TTL
            decisions.append(internal_pb.Decision(
                message_id=f"msg_{uuid.uuid4().hex}",
                campaign_id=campaign.id,
                campaign_version=campaign.version,
                variant_id=variant.id,
                content=content.content,
                locale=content.locale,
                expire_time=to_timestamp(now + ttl),
            ))
        if decisions:
            await store.record_deliveries(self.pool, app_id, user_id, now, [
                store.Delivery(d.message_id, d.campaign_id, d.variant_id) for d in decisions])
        return internal_pb.DecideResponse(decisions=decisions, user=user)


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, decider: Decider) -> None:
        self._d = decider

    async def CreateCampaign(self, request: pb.CreateCampaignRequest, context) -> pb.CreateCampaignResponse:
        campaign = pb.Campaign()
        campaign.CopyFrom(request.campaign)
        if campaign.status == pb.CAMPAIGN_STATUS_UNSPECIFIED:
            campaign.status = pb.CAMPAIGN_STATUS_DRAFT
        _check(campaign)
        saved = await store.create_campaign(self._d.pool, current_app_id(), campaign)
        self._d.catalog.invalidate(current_app_id())
        return pb.CreateCampaignResponse(campaign=saved)

    async def UpdateCampaign(self, request: pb.UpdateCampaignRequest, context) -> pb.UpdateCampaignResponse:
        app_id = current_app_id()
        existing = await _existing(self._d.pool, app_id, request.campaign.id, "campaign.id")
        campaign = pb.Campaign()
        campaign.CopyFrom(request.campaign)
        if campaign.status == pb.CAMPAIGN_STATUS_UNSPECIFIED:
            campaign.status = existing.status
        _check(campaign)
        saved = await store.save_version(self._d.pool, app_id, campaign, request.expected_version)
        if saved is None:
            raise Aborted(f"campaign is no longer at version {request.expected_version}")
        self._d.catalog.invalidate(app_id)
        return pb.UpdateCampaignResponse(campaign=saved)

    async def GetCampaign(self, request: pb.GetCampaignRequest, context) -> pb.GetCampaignResponse:
        app_id = current_app_id()
        if not request.campaign_id:
            raise InvalidArgument.field("campaign_id", "is required")
        campaign = await store.get_campaign(self._d.pool, app_id, request.campaign_id, request.version)
        if campaign is None:
            raise NotFound(f"campaign {request.campaign_id!r} (version {request.version or 'latest'}) not found")
        return pb.GetCampaignResponse(campaign=campaign)

    async def ListCampaigns(self, request: pb.ListCampaignsRequest, context) -> pb.ListCampaignsResponse:
        size = page_size(request.page_size)
        rows = await store.list_campaigns(self._d.pool, current_app_id(), request.page_token, size + 1, request.status)
        more = len(rows) > size
        rows = rows[:size]
        return pb.ListCampaignsResponse(campaigns=rows, next_page_token=rows[-1].id if more else "")

    async def SetCampaignStatus(self, request: pb.SetCampaignStatusRequest, context) -> pb.SetCampaignStatusResponse:
        app_id = current_app_id()
        if request.status == pb.CAMPAIGN_STATUS_UNSPECIFIED:
            raise InvalidArgument.field("status", "is required")
        campaign = await _existing(self._d.pool, app_id, request.campaign_id, "campaign_id")
        if campaign.status == request.status:
            return pb.SetCampaignStatusResponse(campaign=campaign)
        if campaign.status == pb.CAMPAIGN_STATUS_ARCHIVED:
            raise InvalidArgument.field("status", "an archived campaign cannot change status")
        campaign.status = request.status
        saved = await store.save_version(self._d.pool, app_id, campaign, campaign.version)
        if saved is None:
            raise Aborted("campaign changed meanwhile; retry")
        self._d.catalog.invalidate(app_id)
        return pb.SetCampaignStatusResponse(campaign=saved)

    async def ExplainDecision(self, request: pb.ExplainDecisionRequest, context) -> pb.ExplainDecisionResponse:
        app_id = current_app_id()
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        user = await self._d.user_context(app_id, request.user_id)
        campaigns = sorted(await store.list_campaigns(self._d.pool, app_id, "", 100_000, 0), key=rank_key)
        now = self._d.clock.now()
        chosen = False
        out = pb.ExplainDecisionResponse(user=user)
        for c in campaigns:
            item = out.campaigns.add(campaign_id=c.id, campaign_name=c.name)
            why = exclusion(c, user, request.context, now)
            if why is not None:
                item.verdict, item.reason, item.detail = pb.VERDICT_EXCLUDED, why.reason, why.detail
                set_timestamp(item.until_time, why.until)
            elif assign_variant(c, request.user_id) == CONTROL:
                item.verdict, item.reason, item.detail = pb.VERDICT_CONTROL, "CONTROL_GROUP", "user is in the control group"
            elif chosen:
                item.verdict, item.reason, item.detail = pb.VERDICT_LOWER_PRIORITY, "LOWER_PRIORITY", "a higher-ranked campaign was chosen"
            else:
                item.verdict = pb.VERDICT_CHOSEN
                chosen = True
        return out

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
        await store.put_settings(self._d.pool, app_id, settings)
        self._d.catalog.invalidate(app_id)
        return pb.UpdateAppSettingsResponse(settings=settings)


class DecisionInternalServicer(internal_grpc.DecisionInternalServiceServicer):
    def __init__(self, decider: Decider) -> None:
        self._d = decider

    async def ApplyEvents(self, request: internal_pb.ApplyEventsRequest, context) -> internal_pb.ApplyEventsResponse:
        applied = await store.apply_events(self._d.pool, request.app_id, list(request.events))
        return internal_pb.ApplyEventsResponse(applied_count=applied)

    async def Decide(self, request: internal_pb.DecideRequest, context) -> internal_pb.DecideResponse:
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        limit = min(request.limit or 1, MAX_PULL)
        return await self._d.decide(request.app_id, request.user_id, request.context, limit)

    async def EraseUser(self, request: internal_pb.EraseUserRequest, context) -> internal_pb.EraseUserResponse:
        await store.erase_user(self._d.pool, request.app_id, request.user_id)
        return internal_pb.EraseUserResponse()


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
