import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from nudge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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

class ProfileUpdate(_message.Message):
    __slots__ = ("update_id", "user_id", "attributes", "unset_attributes", "time_zone", "locale", "occurred_time")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.AttributeValue, _Mapping]] = ...) -> None: ...
    UPDATE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    UNSET_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_TIME_FIELD_NUMBER: _ClassVar[int]
    update_id: str
    user_id: str
    attributes: _containers.MessageMap[str, _common_pb2.AttributeValue]
    unset_attributes: _containers.RepeatedScalarFieldContainer[str]
    time_zone: str
    locale: str
    occurred_time: _timestamp_pb2.Timestamp
    def __init__(self, update_id: _Optional[str] = ..., user_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, _common_pb2.AttributeValue]] = ..., unset_attributes: _Optional[_Iterable[str]] = ..., time_zone: _Optional[str] = ..., locale: _Optional[str] = ..., occurred_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApplyProfileUpdatesRequest(_message.Message):
    __slots__ = ("app_id", "updates", "span")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    updates: _containers.RepeatedCompositeFieldContainer[ProfileUpdate]
    span: _common_pb2.LogSpan
    def __init__(self, app_id: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[ProfileUpdate, _Mapping]]] = ..., span: _Optional[_Union[_common_pb2.LogSpan, _Mapping]] = ...) -> None: ...

class ApplyProfileUpdatesResponse(_message.Message):
    __slots__ = ("applied_count",)
    APPLIED_COUNT_FIELD_NUMBER: _ClassVar[int]
    applied_count: int
    def __init__(self, applied_count: _Optional[int] = ...) -> None: ...

class GetUserContextRequest(_message.Message):
    __slots__ = ("app_id", "user_id")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    user_id: str
    def __init__(self, app_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class GetUserContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.UserContext
    def __init__(self, context: _Optional[_Union[_common_pb2.UserContext, _Mapping]] = ...) -> None: ...

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

class CheckSegmentsRequest(_message.Message):
    __slots__ = ("app_id", "segment_ids")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, app_id: _Optional[str] = ..., segment_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckSegmentsResponse(_message.Message):
    __slots__ = ("existing_segment_ids",)
    EXISTING_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    existing_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, existing_segment_ids: _Optional[_Iterable[str]] = ...) -> None: ...
