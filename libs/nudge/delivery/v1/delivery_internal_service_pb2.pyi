from nudge.common.v1 import common_pb2 as _common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as _decision_internal_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnqueueMessagesRequest(_message.Message):
    __slots__ = ("app_id", "user_id", "decisions", "control_exposures", "unsent")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    UNSENT_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    user_id: str
    decisions: _containers.RepeatedCompositeFieldContainer[_decision_internal_service_pb2.Decision]
    control_exposures: _containers.RepeatedCompositeFieldContainer[_decision_internal_service_pb2.Decision]
    unsent: _containers.RepeatedCompositeFieldContainer[UnsentMessage]
    def __init__(self, app_id: _Optional[str] = ..., user_id: _Optional[str] = ..., decisions: _Optional[_Iterable[_Union[_decision_internal_service_pb2.Decision, _Mapping]]] = ..., control_exposures: _Optional[_Iterable[_Union[_decision_internal_service_pb2.Decision, _Mapping]]] = ..., unsent: _Optional[_Iterable[_Union[UnsentMessage, _Mapping]]] = ...) -> None: ...

class UnsentMessage(_message.Message):
    __slots__ = ("message_id", "campaign_id", "campaign_version", "variant_id", "expired", "reason")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    campaign_id: str
    campaign_version: int
    variant_id: str
    expired: bool
    reason: _decision_internal_service_pb2.DropReason
    def __init__(self, message_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., campaign_version: _Optional[int] = ..., variant_id: _Optional[str] = ..., expired: _Optional[bool] = ..., reason: _Optional[_Union[_decision_internal_service_pb2.DropReason, str]] = ...) -> None: ...

class EnqueueMessagesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

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
    __slots__ = ("conversion_count",)
    CONVERSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    conversion_count: int
    def __init__(self, conversion_count: _Optional[int] = ...) -> None: ...

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
