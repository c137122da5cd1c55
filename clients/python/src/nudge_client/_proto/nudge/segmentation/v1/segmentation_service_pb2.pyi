import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from nudge_client._proto.nudge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_OPERATOR_UNSPECIFIED: _ClassVar[GroupOperator]
    GROUP_OPERATOR_AND: _ClassVar[GroupOperator]
    GROUP_OPERATOR_OR: _ClassVar[GroupOperator]
    GROUP_OPERATOR_NOT: _ClassVar[GroupOperator]

class AttributeOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTRIBUTE_OPERATOR_UNSPECIFIED: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_EQUALS: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_NOT_EQUALS: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_GREATER: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_LESS: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_LESS_OR_EQUAL: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_IN: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_NOT_IN: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_CONTAINS: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_STARTS_WITH: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_EXISTS: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_IS_EMPTY: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_BEFORE: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_AFTER: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_WITHIN_LAST: _ClassVar[AttributeOperator]
    ATTRIBUTE_OPERATOR_MORE_THAN_AGO: _ClassVar[AttributeOperator]

class EventOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_OPERATOR_UNSPECIFIED: _ClassVar[EventOperator]
    EVENT_OPERATOR_AT_LEAST: _ClassVar[EventOperator]
    EVENT_OPERATOR_AT_MOST: _ClassVar[EventOperator]
    EVENT_OPERATOR_EXACTLY: _ClassVar[EventOperator]
    EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO: _ClassVar[EventOperator]
    EVENT_OPERATOR_NEVER: _ClassVar[EventOperator]
    EVENT_OPERATOR_EACH_DAY: _ClassVar[EventOperator]
GROUP_OPERATOR_UNSPECIFIED: GroupOperator
GROUP_OPERATOR_AND: GroupOperator
GROUP_OPERATOR_OR: GroupOperator
GROUP_OPERATOR_NOT: GroupOperator
ATTRIBUTE_OPERATOR_UNSPECIFIED: AttributeOperator
ATTRIBUTE_OPERATOR_EQUALS: AttributeOperator
ATTRIBUTE_OPERATOR_NOT_EQUALS: AttributeOperator
ATTRIBUTE_OPERATOR_GREATER: AttributeOperator
ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL: AttributeOperator
ATTRIBUTE_OPERATOR_LESS: AttributeOperator
ATTRIBUTE_OPERATOR_LESS_OR_EQUAL: AttributeOperator
ATTRIBUTE_OPERATOR_IN: AttributeOperator
ATTRIBUTE_OPERATOR_NOT_IN: AttributeOperator
ATTRIBUTE_OPERATOR_CONTAINS: AttributeOperator
ATTRIBUTE_OPERATOR_STARTS_WITH: AttributeOperator
ATTRIBUTE_OPERATOR_EXISTS: AttributeOperator
ATTRIBUTE_OPERATOR_IS_EMPTY: AttributeOperator
ATTRIBUTE_OPERATOR_BEFORE: AttributeOperator
ATTRIBUTE_OPERATOR_AFTER: AttributeOperator
ATTRIBUTE_OPERATOR_WITHIN_LAST: AttributeOperator
ATTRIBUTE_OPERATOR_MORE_THAN_AGO: AttributeOperator
EVENT_OPERATOR_UNSPECIFIED: EventOperator
EVENT_OPERATOR_AT_LEAST: EventOperator
EVENT_OPERATOR_AT_MOST: EventOperator
EVENT_OPERATOR_EXACTLY: EventOperator
EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO: EventOperator
EVENT_OPERATOR_NEVER: EventOperator
EVENT_OPERATOR_EACH_DAY: EventOperator

class Segment(_message.Message):
    __slots__ = ("id", "name", "description", "rule", "version", "create_time", "update_time", "key")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    rule: Rule
    version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    key: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("group", "attribute", "event", "inactive", "platform", "app_version", "random_bucket", "segment")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    RANDOM_BUCKET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    group: Group
    attribute: AttributeCondition
    event: EventCondition
    inactive: InactiveCondition
    platform: PlatformCondition
    app_version: AppVersionCondition
    random_bucket: RandomBucketCondition
    segment: SegmentMembershipCondition
    def __init__(self, group: _Optional[_Union[Group, _Mapping]] = ..., attribute: _Optional[_Union[AttributeCondition, _Mapping]] = ..., event: _Optional[_Union[EventCondition, _Mapping]] = ..., inactive: _Optional[_Union[InactiveCondition, _Mapping]] = ..., platform: _Optional[_Union[PlatformCondition, _Mapping]] = ..., app_version: _Optional[_Union[AppVersionCondition, _Mapping]] = ..., random_bucket: _Optional[_Union[RandomBucketCondition, _Mapping]] = ..., segment: _Optional[_Union[SegmentMembershipCondition, _Mapping]] = ...) -> None: ...

class Group(_message.Message):
    __slots__ = ("operator", "rules")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    operator: GroupOperator
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, operator: _Optional[_Union[GroupOperator, str]] = ..., rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class AttributeCondition(_message.Message):
    __slots__ = ("name", "operator", "value", "values", "duration")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    operator: AttributeOperator
    value: _common_pb2.AttributeValue
    values: _containers.RepeatedCompositeFieldContainer[_common_pb2.AttributeValue]
    duration: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., operator: _Optional[_Union[AttributeOperator, str]] = ..., value: _Optional[_Union[_common_pb2.AttributeValue, _Mapping]] = ..., values: _Optional[_Iterable[_Union[_common_pb2.AttributeValue, _Mapping]]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class EventCondition(_message.Message):
    __slots__ = ("name", "operator", "count", "window", "days", "property_filters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FILTERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    operator: EventOperator
    count: int
    window: _duration_pb2.Duration
    days: int
    property_filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.PropertyFilter]
    def __init__(self, name: _Optional[str] = ..., operator: _Optional[_Union[EventOperator, str]] = ..., count: _Optional[int] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., days: _Optional[int] = ..., property_filters: _Optional[_Iterable[_Union[_common_pb2.PropertyFilter, _Mapping]]] = ...) -> None: ...

class InactiveCondition(_message.Message):
    __slots__ = ("duration",)
    DURATION_FIELD_NUMBER: _ClassVar[int]
    duration: _duration_pb2.Duration
    def __init__(self, duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class PlatformCondition(_message.Message):
    __slots__ = ("platforms",)
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    platforms: _containers.RepeatedScalarFieldContainer[_common_pb2.Platform]
    def __init__(self, platforms: _Optional[_Iterable[_Union[_common_pb2.Platform, str]]] = ...) -> None: ...

class AppVersionCondition(_message.Message):
    __slots__ = ("operator", "version")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    operator: AttributeOperator
    version: str
    def __init__(self, operator: _Optional[_Union[AttributeOperator, str]] = ..., version: _Optional[str] = ...) -> None: ...

class RandomBucketCondition(_message.Message):
    __slots__ = ("from_percent", "to_percent", "salt")
    FROM_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TO_PERCENT_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    from_percent: int
    to_percent: int
    salt: str
    def __init__(self, from_percent: _Optional[int] = ..., to_percent: _Optional[int] = ..., salt: _Optional[str] = ...) -> None: ...

class SegmentMembershipCondition(_message.Message):
    __slots__ = ("segment_id", "negate")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NEGATE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    negate: bool
    def __init__(self, segment_id: _Optional[str] = ..., negate: _Optional[bool] = ...) -> None: ...

class CreateSegmentRequest(_message.Message):
    __slots__ = ("name", "description", "rule", "request_id", "key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    rule: Rule
    request_id: str
    key: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ..., request_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class CreateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class UpdateSegmentRequest(_message.Message):
    __slots__ = ("segment_id", "name", "description", "rule", "expected_version", "request_id", "key")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    name: str
    description: str
    rule: Rule
    expected_version: int
    request_id: str
    key: str
    def __init__(self, segment_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ..., expected_version: _Optional[int] = ..., request_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class UpdateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("segment_id", "key")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    key: str
    def __init__(self, segment_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class GetSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "key")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    key: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "next_page_token")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    next_page_token: str
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSegmentRequest(_message.Message):
    __slots__ = ("segment_id", "request_id")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    request_id: str
    def __init__(self, segment_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteSegmentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EstimateAudienceRequest(_message.Message):
    __slots__ = ("segment_id", "rule")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    rule: Rule
    def __init__(self, segment_id: _Optional[str] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class EstimateAudienceResponse(_message.Message):
    __slots__ = ("user_count", "total_user_count")
    USER_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_USER_COUNT_FIELD_NUMBER: _ClassVar[int]
    user_count: int
    total_user_count: int
    def __init__(self, user_count: _Optional[int] = ..., total_user_count: _Optional[int] = ...) -> None: ...

class ListSegmentMembersRequest(_message.Message):
    __slots__ = ("segment_id", "page_size", "page_token")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    page_size: int
    page_token: str
    def __init__(self, segment_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentMembersResponse(_message.Message):
    __slots__ = ("user_ids", "next_page_token")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetUserProfileRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetUserProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.UserContext
    def __init__(self, profile: _Optional[_Union[_common_pb2.UserContext, _Mapping]] = ...) -> None: ...
