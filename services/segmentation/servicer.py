"""SegmentationService and SegmentationInternalService handlers: protos in, domain calls,
protos out."""

from __future__ import annotations



from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as internal_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from nudgelib.calls import current_app_id
from nudgelib.clients import Peer
from nudgelib.eventlog import positions
from nudgelib.keys import key_problems
from nudgelib.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from nudgelib.pagination import decode_token, encode_token, page_size
from nudgelib.protoconv import set_timestamp
from nudgelib.replay import Remember, Replays, keeping, request_id_problems
from nudgelib.tracing import annotate_user
from services.segmentation.model import SegmentDef
from services.segmentation.rule_validation import validate
from services.segmentation.store import definitions
from services.segmentation.membership import Memberships
from services.segmentation.segments import Segments

MAX_NAME = 200
MAX_DESCRIPTION = 2000
# Segment ids one CheckSegments may ask about.
MAX_CHECKED = 1000


def segment_proto(s: SegmentDef) -> pb.Segment:
    out = pb.Segment(id=s.id, name=s.name, description=s.description, rule=s.rule, version=s.version, key=s.key)
    set_timestamp(out.create_time, s.created_at)
    set_timestamp(out.update_time, s.updated_at)
    return out


def _check_definition(name: str, description: str, rule_set: bool, rule: pb.Rule, request_id: str,
                      key: str = "") -> None:
    problems: list[FieldViolation] = key_problems(key, "key")
    if not name.strip():
        problems.append(FieldViolation("name", "is required"))
    elif len(name) > MAX_NAME or "\x00" in name:
        problems.append(FieldViolation("name", f"must be at most {MAX_NAME} characters without NUL"))
    if len(description) > MAX_DESCRIPTION or "\x00" in description:
        problems.append(FieldViolation("description", f"must be at most {MAX_DESCRIPTION} characters without NUL"))
    if not rule_set:
        problems.append(FieldViolation("rule", "is required"))
    else:
        problems += validate(rule, "rule")
    problems += request_id_problems(request_id)
    if problems:
        raise InvalidArgument(problems)


def _check_key(key: str) -> None:
    problems = key_problems(key, "key")
    if problems:
        raise InvalidArgument(problems)


def _decode_token(token: str) -> str:
    """The id a list's page starts after ('' for the first page)."""
    if not token:
        return ""
    try:
        return decode_token(token, 1)[0]
    except ValueError:
        raise InvalidArgument.field("page_token", "is not a token this service handed out") from None


class SegmentationServicer(pb_grpc.SegmentationServiceServicer):
    def __init__(self, segments: Segments, memberships: Memberships, replays: Replays, decision: Peer) -> None:
        self._segments = segments
        self._memberships = memberships
        self._replays = replays
        self._decision = decision
        self._campaigns = decision_grpc.DecisionInternalServiceStub(decision.channel)

    async def _unused_by_campaigns(self, app_id: str, segment_id: str) -> None:
        """Decision answers which campaigns name the segment (audience or segment-entry
        trigger) and are not archived; while any does, the segment stays."""
        found = await self._decision.ask(self._campaigns.CampaignsUsingSegment,
                                         decision_pb.CampaignsUsingSegmentRequest(app_id=app_id, segment_id=segment_id),
                                         "say which campaigns use the segment")
        if found.campaigns:
            named = ", ".join(f"{c.campaign_id} ({c.name!r})" for c in found.campaigns)
            raise FailedPrecondition(f"segment is used by campaigns {named}; archive them or remove the segment "
                                     "from them first")

    async def CreateSegment(self, request: pb.CreateSegmentRequest, context) -> pb.CreateSegmentResponse:
        app_id = current_app_id()
        _check_definition(request.name, request.description, request.HasField("rule"), request.rule,
                          request.request_id, request.key)

        async def call(remember: Remember | None) -> pb.CreateSegmentResponse:
            row = await self._segments.create(app_id, request.name, request.description, request.rule,
                                              keeping(remember, lambda s: pb.CreateSegmentResponse(segment=segment_proto(s))),
                                              request.key)
            return pb.CreateSegmentResponse(segment=segment_proto(row))

        return await self._replays.once(app_id, "CreateSegment", request, pb.CreateSegmentResponse, call)

    async def UpdateSegment(self, request: pb.UpdateSegmentRequest, context) -> pb.UpdateSegmentResponse:
        app_id = current_app_id()
        if not request.segment_id:
            raise InvalidArgument.field("segment_id", "is required")
        _check_definition(request.name, request.description, request.HasField("rule"), request.rule,
                          request.request_id, request.key)

        async def call(remember: Remember | None) -> pb.UpdateSegmentResponse:
            row = await self._segments.update(
                app_id, request.segment_id, request.name, request.description, request.rule,
                request.expected_version,
                keeping(remember, lambda s: pb.UpdateSegmentResponse(segment=segment_proto(s))), request.key)
            return pb.UpdateSegmentResponse(segment=segment_proto(row))

        return await self._replays.once(app_id, "UpdateSegment", request, pb.UpdateSegmentResponse, call)

    async def GetSegment(self, request: pb.GetSegmentRequest, context) -> pb.GetSegmentResponse:
        app_id = current_app_id()
        if request.segment_id and request.key:
            raise InvalidArgument.field("key", "give segment_id or key, not both")
        segment_id = request.segment_id
        if request.key:
            _check_key(request.key)
            segment_id = await definitions.segment_id_by_key(self._segments.pool, app_id, request.key)
            if segment_id is None:
                raise NotFound(f"no segment with key {request.key!r}")
        return pb.GetSegmentResponse(segment=segment_proto(await self._existing(app_id, segment_id)))

    async def ListSegments(self, request: pb.ListSegmentsRequest, context) -> pb.ListSegmentsResponse:
        size = page_size(request.page_size)
        _check_key(request.key)
        rows = await definitions.list_segments(self._segments.pool, current_app_id(), _decode_token(request.page_token),
                                         size + 1, request.key)
        more = len(rows) > size
        rows = rows[:size]
        return pb.ListSegmentsResponse(segments=[segment_proto(r) for r in rows],
                                       next_page_token=encode_token(rows[-1].id) if more else "")

    async def DeleteSegment(self, request: pb.DeleteSegmentRequest, context) -> pb.DeleteSegmentResponse:
        app_id = current_app_id()
        if not request.segment_id:
            raise InvalidArgument.field("segment_id", "is required")

        async def call(remember: Remember | None) -> pb.DeleteSegmentResponse:
            await self._existing(app_id, request.segment_id)
            await self._unused_by_campaigns(app_id, request.segment_id)
            await self._segments.delete(app_id, request.segment_id,
                                        keeping(remember, lambda _s: pb.DeleteSegmentResponse()))
            return pb.DeleteSegmentResponse()

        return await self._replays.once(app_id, "DeleteSegment", request, pb.DeleteSegmentResponse, call)

    async def EstimateAudience(self, request: pb.EstimateAudienceRequest, context) -> pb.EstimateAudienceResponse:
        app_id = current_app_id()
        target = request.WhichOneof("target")
        if target == "segment_id":
            rule = (await self._existing(app_id, request.segment_id)).rule
        elif target == "rule":
            await self._segments.check(app_id, request.rule, None)
            rule = request.rule
        else:
            raise InvalidArgument.field("target", "set segment_id or rule")
        matched, total = await self._segments.estimate(app_id, rule)
        return pb.EstimateAudienceResponse(user_count=matched, total_user_count=total)

    async def ListSegmentMembers(self, request: pb.ListSegmentMembersRequest, context) -> pb.ListSegmentMembersResponse:
        app_id = current_app_id()
        if not request.segment_id:
            raise InvalidArgument.field("segment_id", "is required")
        size = page_size(request.page_size, default=100, maximum=1000)
        members = await self._segments.members(app_id, request.segment_id, _decode_token(request.page_token),
                                               size + 1)
        more = len(members) > size
        members = members[:size]
        return pb.ListSegmentMembersResponse(user_ids=members,
                                             next_page_token=encode_token(members[-1]) if more else "")

    async def GetUserProfile(self, request: pb.GetUserProfileRequest, context) -> pb.GetUserProfileResponse:
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required")
        found = await self._memberships.user_context(current_app_id(), request.user_id)
        if not found.context.known:
            raise NotFound(f"no profile for user {request.user_id!r}")
        return pb.GetUserProfileResponse(profile=found.context)

    async def _existing(self, app_id: str, segment_id: str) -> SegmentDef:
        if not segment_id:
            raise InvalidArgument.field("segment_id", "is required")
        row = await definitions.get_segment(self._segments.pool, app_id, segment_id)
        if row is None:
            raise NotFound(f"segment {segment_id!r} not found")
        return row


def _internal_app(app_id: str) -> None:
    if not app_id:
        raise InvalidArgument.field("app_id", "is required")


class SegmentationInternalServicer(internal_grpc.SegmentationInternalServiceServicer):
    def __init__(self, memberships: Memberships) -> None:
        self._m = memberships

    async def ApplyEvents(self, request: internal_pb.ApplyEventsRequest, context) -> internal_pb.ApplyEventsResponse:
        _internal_app(request.app_id)
        for i, e in enumerate(request.events):
            if not e.event_id or not e.user_id or not e.name:
                raise InvalidArgument.field(f"events[{i}]", "needs event_id, user_id and name")
        positions.require_span(request.span, len(request.events))
        applied = await self._m.apply_events(request.app_id, list(request.events), request.span)
        return internal_pb.ApplyEventsResponse(applied_count=applied)

    async def ApplyProfileUpdates(self, request: internal_pb.ApplyProfileUpdatesRequest,
                                  context) -> internal_pb.ApplyProfileUpdatesResponse:
        _internal_app(request.app_id)
        for i, u in enumerate(request.updates):
            if not u.update_id or not u.user_id:
                raise InvalidArgument.field(f"updates[{i}]", "needs update_id and user_id")
        positions.require_span(request.span, len(request.updates))
        applied = await self._m.apply_profile_updates(request.app_id, list(request.updates), request.span)
        return internal_pb.ApplyProfileUpdatesResponse(applied_count=applied)

    async def GetUserContext(self, request: internal_pb.GetUserContextRequest,
                             context) -> bytes:
        if not request.app_id or not request.user_id:
            raise InvalidArgument.field("user_id" if request.app_id else "app_id", "is required")
        annotate_user(request.app_id, request.user_id)
        # Sent as the cache keeps it: no parse and re-serialize per call.
        return await self._m.serialized_user_context(request.app_id, request.user_id)

    async def EraseUser(self, request: internal_pb.EraseUserRequest, context) -> internal_pb.EraseUserResponse:
        if not request.app_id or not request.user_id:
            raise InvalidArgument.field("user_id" if request.app_id else "app_id", "is required")
        await self._m.erase_user(request.app_id, request.user_id)
        return internal_pb.EraseUserResponse()

    async def CheckSegments(self, request: internal_pb.CheckSegmentsRequest,
                            context) -> internal_pb.CheckSegmentsResponse:
        _internal_app(request.app_id)
        if len(request.segment_ids) > MAX_CHECKED:
            raise InvalidArgument.field("segment_ids", f"at most {MAX_CHECKED}")
        ids = list(dict.fromkeys(request.segment_ids))
        found = await definitions.existing_segment_ids(self._m.pool, request.app_id, ids) if ids else set()
        return internal_pb.CheckSegmentsResponse(existing_segment_ids=[i for i in ids if i in found])
