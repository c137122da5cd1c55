"""SegmentationService and SegmentationInternalService handlers."""

from __future__ import annotations

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as internal_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from nudgelib.calls import current_app_id
from nudgelib.clock import Clock
from nudgelib.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from nudgelib.pagination import page_size
from nudgelib.protoconv import attribute_from_json, set_timestamp
from services.segmentation import rules, store
from services.segmentation.catalog import SegmentCatalog
from services.segmentation.profile import Profile

MAX_NAME = 200
SCAN_PAGE = 1000


def segment_proto(s: store.SegmentRow) -> pb.Segment:
    out = pb.Segment(id=s.id, name=s.name, description=s.description, rule=s.rule, version=s.version)
    set_timestamp(out.create_time, s.created_at)
    set_timestamp(out.update_time, s.updated_at)
    return out


def context_proto(profile: Profile, segment_ids: list[str]) -> common_pb2.UserContext:
    ctx = common_pb2.UserContext(
        user_id=profile.user_id,
        known=profile.known,
        time_zone=profile.time_zone,
        locale=profile.locale,
        app_version=profile.app_version,
        platforms=sorted(profile.platforms),
        segment_ids=segment_ids,
    )
    for name, value in profile.stored_attributes.items():
        ctx.attributes[name].CopyFrom(attribute_from_json(value))
    set_timestamp(ctx.first_seen_time, profile.first_seen)
    set_timestamp(ctx.last_seen_time, profile.last_seen)
    return ctx


class Segmentation:
    """What both servicers share: the pool, the rule cache and the clock."""

    def __init__(self, pool: asyncpg.Pool, catalog: SegmentCatalog, clock: Clock) -> None:
        self.pool = pool
        self.catalog = catalog
        self.clock = clock

    async def user_context(self, app_id: str, user_id: str) -> common_pb2.UserContext:
        profile = await store.load_profile(self.pool, app_id, user_id)
        segments = await self.catalog.rules(app_id)
        return context_proto(profile, rules.memberships(segments, profile, self.clock.now()))

    async def check_rule(self, app_id: str, rule: pb.Rule, segment_id: str | None, field: str) -> None:
        problems = rules.validate(rule, field)
        if problems:
            raise InvalidArgument(problems)
        segments = dict(await self.catalog.rules(app_id))
        for ref in sorted(rules.referenced_segments(rule)):
            if ref not in segments and ref != segment_id:
                raise InvalidArgument.field(field, f"refers to unknown segment {ref!r}")
        if segment_id is not None:
            segments[segment_id] = rule
            edges = {sid: rules.referenced_segments(r) for sid, r in segments.items()}
            if rules.find_cycle(segment_id, edges):
                raise InvalidArgument.field(field, "segment membership conditions form a cycle")

    async def count_and_members(self, app_id: str, rule: pb.Rule, after: str, limit: int | None):
        """Scans profiles page by page, evaluating the rule for each user."""
        segments = await self.catalog.rules(app_id)
        now = self.clock.now()
        total = matched = 0
        members: list[str] = []
        cursor = after
        while True:
            page = await store.load_profiles_page(self.pool, app_id, cursor, SCAN_PAGE)
            if not page:
                return total, matched, members, ""
            for profile in page:
                total += 1
                member_of = rules.resolver(segments, profile, now)
                if rules.evaluate(rule, profile, now, member_of):
                    matched += 1
                    if limit is not None:
                        members.append(profile.user_id)
                        if len(members) == limit:
                            return total, matched, members, profile.user_id
            cursor = page[-1].user_id


class SegmentationServicer(pb_grpc.SegmentationServiceServicer):
    def __init__(self, core: Segmentation) -> None:
        self._core = core

    async def CreateSegment(self, request: pb.CreateSegmentRequest, context) -> pb.CreateSegmentResponse:
        app_id = current_app_id()
        _check_name(request.name)
        if not request.HasField("rule"):
            raise InvalidArgument.field("rule", "is required")
        await self._core.check_rule(app_id, request.rule, None, "rule")
        row = await store.create_segment(self._core.pool, app_id, request.name, request.description, request.rule)
        self._core.catalog.invalidate(app_id)
        return pb.CreateSegmentResponse(segment=segment_proto(row))

    async def UpdateSegment(self, request: pb.UpdateSegmentRequest, context) -> pb.UpdateSegmentResponse:
        app_id = current_app_id()
        existing = await _existing(self._core, app_id, request.segment_id)
        _check_name(request.name)
        if not request.HasField("rule"):
            raise InvalidArgument.field("rule", "is required")
        await self._core.check_rule(app_id, request.rule, existing.id, "rule")
        row = await store.update_segment(self._core.pool, app_id, existing.id, request.name,
                                         request.description, request.rule, request.expected_version)
        if row is None:
            raise Aborted(f"segment is no longer at version {request.expected_version}")
        self._core.catalog.invalidate(app_id)
        return pb.UpdateSegmentResponse(segment=segment_proto(row))

    async def GetSegment(self, request: pb.GetSegmentRequest, context) -> pb.GetSegmentResponse:
        row = await _existing(self._core, current_app_id(), request.segment_id)
        return pb.GetSegmentResponse(segment=segment_proto(row))

    async def ListSegments(self, request: pb.ListSegmentsRequest, context) -> pb.ListSegmentsResponse:
        size = page_size(request.page_size)
        rows = await store.list_segments(self._core.pool, current_app_id(), request.page_token, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return pb.ListSegmentsResponse(
            segments=[segment_proto(r) for r in rows], next_page_token=rows[-1].id if more else "")

    async def DeleteSegment(self, request: pb.DeleteSegmentRequest, context) -> pb.DeleteSegmentResponse:
        app_id = current_app_id()
        existing = await _existing(self._core, app_id, request.segment_id)
        users = [sid for sid, r in (await self._core.catalog.rules(app_id)).items()
                 if existing.id in rules.referenced_segments(r) and sid != existing.id]
        if users:
            raise FailedPrecondition(f"segment is used by segments {', '.join(sorted(users))}")
        await store.delete_segment(self._core.pool, app_id, existing.id)
        self._core.catalog.invalidate(app_id)
        return pb.DeleteSegmentResponse()

    async def EstimateAudience(self, request: pb.EstimateAudienceRequest, context) -> pb.EstimateAudienceResponse:
        app_id = current_app_id()
        target = request.WhichOneof("target")
        if target == "segment_id":
            rule = (await _existing(self._core, app_id, request.segment_id)).rule
        elif target == "rule":
            await self._core.check_rule(app_id, request.rule, None, "rule")
            rule = request.rule
        else:
            raise InvalidArgument.field("target", "set segment_id or rule")
        total, matched, _, _ = await self._core.count_and_members(app_id, rule, "", None)
        return pb.EstimateAudienceResponse(user_count=matched, total_user_count=total)

    async def ListSegmentMembers(self, request: pb.ListSegmentMembersRequest, context) -> pb.ListSegmentMembersResponse:
        app_id = current_app_id()
        segment = await _existing(self._core, app_id, request.segment_id)
        size = page_size(request.page_size, default=100, maximum=1000)
        _, _, members, last = await self._core.count_and_members(app_id, segment.rule, request.page_token, size)
        return pb.ListSegmentMembersResponse(user_ids=members, next_page_token=last)

    async def GetUserProfile(self, request: pb.GetUserProfileRequest, context) -> pb.GetUserProfileResponse:
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        ctx = await self._core.user_context(current_app_id(), request.user_id)
        if not ctx.known:
            raise NotFound(f"no profile for user {request.user_id!r}")
        return pb.GetUserProfileResponse(profile=ctx)


class SegmentationInternalServicer(internal_grpc.SegmentationInternalServiceServicer):
    def __init__(self, core: Segmentation) -> None:
        self._core = core

    async def ApplyEvents(self, request: internal_pb.ApplyEventsRequest, context) -> internal_pb.ApplyEventsResponse:
        touched = await store.apply_events(self._core.pool, request.app_id, list(request.events))
        return internal_pb.ApplyEventsResponse(applied_count=len(touched))

    async def ApplyProfileUpdates(self, request, context) -> internal_pb.ApplyProfileUpdatesResponse:
        touched = await store.apply_profile_updates(self._core.pool, request.app_id, list(request.updates))
        return internal_pb.ApplyProfileUpdatesResponse(applied_count=len(touched))

    async def GetUserContext(self, request: internal_pb.GetUserContextRequest, context) -> internal_pb.GetUserContextResponse:
        return internal_pb.GetUserContextResponse(
            context=await self._core.user_context(request.app_id, request.user_id))

    async def EraseUser(self, request: internal_pb.EraseUserRequest, context) -> internal_pb.EraseUserResponse:
        await store.erase_user(self._core.pool, request.app_id, request.user_id)
        return internal_pb.EraseUserResponse()


def _check_name(name: str) -> None:
    if not name.strip():
        raise InvalidArgument.field("name", "is required")
    if len(name) > MAX_NAME:
        raise InvalidArgument.field("name", f"is longer than {MAX_NAME} characters")


async def _existing(core: Segmentation, app_id: str, segment_id: str) -> store.SegmentRow:
    if not segment_id:
        raise InvalidArgument.field("segment_id", "is required")
    row = await store.get_segment(core.pool, app_id, segment_id)
    if row is None:
        raise NotFound(f"segment {segment_id!r} not found")
    return row
