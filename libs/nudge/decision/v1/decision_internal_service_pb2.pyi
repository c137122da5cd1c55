import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from nudge.common.v1 import common_pb2 as _common_pb2
from nudge.decision.v1 import decision_service_pb2 as _decision_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DropReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DROP_REASON_UNSPECIFIED: _ClassVar[DropReason]
    DROP_REASON_CAMPAIGN_NOT_RUNNING: _ClassVar[DropReason]
    DROP_REASON_NOT_IN_AUDIENCE: _ClassVar[DropReason]
    DROP_REASON_OUTSIDE_WINDOW: _ClassVar[DropReason]
    DROP_REASON_QUIET_HOURS: _ClassVar[DropReason]
    DROP_REASON_CAPPED: _ClassVar[DropReason]
    DROP_REASON_RENDER_FAILED: _ClassVar[DropReason]
    DROP_REASON_OTHER: _ClassVar[DropReason]
    DROP_REASON_FAILED: _ClassVar[DropReason]
DROP_REASON_UNSPECIFIED: DropReason
DROP_REASON_CAMPAIGN_NOT_RUNNING: DropReason
DROP_REASON_NOT_IN_AUDIENCE: DropReason
DROP_REASON_OUTSIDE_WINDOW: DropReason
DROP_REASON_QUIET_HOURS: DropReason
DROP_REASON_CAPPED: DropReason
DROP_REASON_RENDER_FAILED: DropReason
DROP_REASON_OTHER: DropReason
DROP_REASON_FAILED: DropReason

class ApplyEventsRequest(_message.Message):
    __slots__ = ("app_id", "events", "span")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.Event]
    span: _common_pb2.LogSpan
    def __init__(self, app_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[_common_pb2.Event, _Mapping]]] = ..., span: _Optional[_Union[_common_pb2.LogSpan, _Mapping]] = ...) -> None: ...

class ApplyEventsResponse(_message.Message):
    __slots__ = ("applied_count",)
    APPLIED_COUNT_FIELD_NUMBER: _ClassVar[int]
    applied_count: int
    def __init__(self, applied_count: _Optional[int] = ...) -> None: ...

class UserChange(_message.Message):
    __slots__ = ("user_id", "entered_segment_ids", "exited_segment_ids", "context", "change_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXITED_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    entered_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    exited_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    context: _common_pb2.UserContext
    change_id: str
    def __init__(self, user_id: _Optional[str] = ..., entered_segment_ids: _Optional[_Iterable[str]] = ..., exited_segment_ids: _Optional[_Iterable[str]] = ..., context: _Optional[_Union[_common_pb2.UserContext, _Mapping]] = ..., change_id: _Optional[str] = ...) -> None: ...

class ApplyUserChangesRequest(_message.Message):
    __slots__ = ("app_id", "changes", "segments_changed", "created_user_ids")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    CREATED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    changes: _containers.RepeatedCompositeFieldContainer[UserChange]
    segments_changed: bool
    created_user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, app_id: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[UserChange, _Mapping]]] = ..., segments_changed: _Optional[bool] = ..., created_user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ApplyUserChangesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("app_id", "user_id", "context", "limit", "pending", "pending_only")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    PENDING_ONLY_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    user_id: str
    context: _decision_service_pb2.RequestContext
    limit: int
    pending: _containers.RepeatedCompositeFieldContainer[Decision]
    pending_only: bool
    def __init__(self, app_id: _Optional[str] = ..., user_id: _Optional[str] = ..., context: _Optional[_Union[_decision_service_pb2.RequestContext, _Mapping]] = ..., limit: _Optional[int] = ..., pending: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., pending_only: _Optional[bool] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("message_id", "campaign_id", "campaign_version", "variant_id", "content", "locale", "expire_time", "event_properties", "conversion_events", "conversion_deadline", "test")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_EVENTS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    campaign_id: str
    campaign_version: int
    variant_id: str
    content: _common_pb2.MessageContent
    locale: str
    expire_time: _timestamp_pb2.Timestamp
    event_properties: _struct_pb2.Struct
    conversion_events: _containers.RepeatedScalarFieldContainer[str]
    conversion_deadline: _duration_pb2.Duration
    test: bool
    def __init__(self, message_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., campaign_version: _Optional[int] = ..., variant_id: _Optional[str] = ..., content: _Optional[_Union[_common_pb2.MessageContent, _Mapping]] = ..., locale: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., conversion_events: _Optional[_Iterable[str]] = ..., conversion_deadline: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., test: _Optional[bool] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("decisions", "user", "control_exposures", "dropped")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CONTROL_EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    user: _common_pb2.UserContext
    control_exposures: _containers.RepeatedCompositeFieldContainer[Decision]
    dropped: _containers.RepeatedCompositeFieldContainer[DroppedMessage]
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., user: _Optional[_Union[_common_pb2.UserContext, _Mapping]] = ..., control_exposures: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., dropped: _Optional[_Iterable[_Union[DroppedMessage, _Mapping]]] = ...) -> None: ...

class DroppedMessage(_message.Message):
    __slots__ = ("message_id", "reason")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    reason: DropReason
    def __init__(self, message_id: _Optional[str] = ..., reason: _Optional[_Union[DropReason, str]] = ...) -> None: ...

class DecideBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[DecideRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[DecideRequest, _Mapping]]] = ...) -> None: ...

class DecideBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecideResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecideResult, _Mapping]]] = ...) -> None: ...

class DecideResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: DecideResponse
    error: DecideError
    def __init__(self, response: _Optional[_Union[DecideResponse, _Mapping]] = ..., error: _Optional[_Union[DecideError, _Mapping]] = ...) -> None: ...

class DecideError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class EraseUserRequest(_message.Message):
    __slots__ = ("app_id", "user_id")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    user_id: str
    def __init__(self, app_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class EraseUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCampaignDefinitionRequest(_message.Message):
    __slots__ = ("app_id", "campaign_id")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    campaign_id: str
    def __init__(self, app_id: _Optional[str] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class GetCampaignDefinitionResponse(_message.Message):
    __slots__ = ("campaign", "time_zone")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    campaign: _decision_service_pb2.Campaign
    time_zone: str
    def __init__(self, campaign: _Optional[_Union[_decision_service_pb2.Campaign, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class ReleaseReservationsRequest(_message.Message):
    __slots__ = ("app_id", "user_id", "message_ids")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    user_id: str
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, app_id: _Optional[str] = ..., user_id: _Optional[str] = ..., message_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleaseReservationsResponse(_message.Message):
    __slots__ = ("released_count",)
    RELEASED_COUNT_FIELD_NUMBER: _ClassVar[int]
    released_count: int
    def __init__(self, released_count: _Optional[int] = ...) -> None: ...

class CampaignsUsingSegmentRequest(_message.Message):
    __slots__ = ("app_id", "segment_id")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    segment_id: str
    def __init__(self, app_id: _Optional[str] = ..., segment_id: _Optional[str] = ...) -> None: ...

class CampaignUsingSegment(_message.Message):
    __slots__ = ("campaign_id", "name", "status")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    name: str
    status: _decision_service_pb2.CampaignStatus
    def __init__(self, campaign_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[_decision_service_pb2.CampaignStatus, str]] = ...) -> None: ...

class CampaignsUsingSegmentResponse(_message.Message):
    __slots__ = ("campaigns",)
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[CampaignUsingSegment]
    def __init__(self, campaigns: _Optional[_Iterable[_Union[CampaignUsingSegment, _Mapping]]] = ...) -> None: ...
