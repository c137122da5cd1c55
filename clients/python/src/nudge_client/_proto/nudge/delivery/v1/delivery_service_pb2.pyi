import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from nudge_client._proto.nudge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InteractionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERACTION_TYPE_UNSPECIFIED: _ClassVar[InteractionType]
    INTERACTION_TYPE_IMPRESSION: _ClassVar[InteractionType]
    INTERACTION_TYPE_CLICK: _ClassVar[InteractionType]
    INTERACTION_TYPE_DISMISS: _ClassVar[InteractionType]
    INTERACTION_TYPE_SURVEY_ANSWER: _ClassVar[InteractionType]

class FunnelStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUNNEL_STAGE_UNSPECIFIED: _ClassVar[FunnelStage]
    FUNNEL_STAGE_SENT: _ClassVar[FunnelStage]
    FUNNEL_STAGE_DELIVERED: _ClassVar[FunnelStage]
    FUNNEL_STAGE_IMPRESSION: _ClassVar[FunnelStage]
    FUNNEL_STAGE_CLICK: _ClassVar[FunnelStage]
    FUNNEL_STAGE_CONVERSION: _ClassVar[FunnelStage]
INTERACTION_TYPE_UNSPECIFIED: InteractionType
INTERACTION_TYPE_IMPRESSION: InteractionType
INTERACTION_TYPE_CLICK: InteractionType
INTERACTION_TYPE_DISMISS: InteractionType
INTERACTION_TYPE_SURVEY_ANSWER: InteractionType
FUNNEL_STAGE_UNSPECIFIED: FunnelStage
FUNNEL_STAGE_SENT: FunnelStage
FUNNEL_STAGE_DELIVERED: FunnelStage
FUNNEL_STAGE_IMPRESSION: FunnelStage
FUNNEL_STAGE_CLICK: FunnelStage
FUNNEL_STAGE_CONVERSION: FunnelStage

class InAppMessage(_message.Message):
    __slots__ = ("message_id", "campaign_id", "campaign_version", "variant_id", "content", "locale", "expire_time", "test")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    campaign_id: str
    campaign_version: int
    variant_id: str
    content: _common_pb2.MessageContent
    locale: str
    expire_time: _timestamp_pb2.Timestamp
    test: bool
    def __init__(self, message_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., campaign_version: _Optional[int] = ..., variant_id: _Optional[str] = ..., content: _Optional[_Union[_common_pb2.MessageContent, _Mapping]] = ..., locale: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test: _Optional[bool] = ...) -> None: ...

class FetchMessagesRequest(_message.Message):
    __slots__ = ("user_id", "platform", "screen", "app_version", "locale", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    SCREEN_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    platform: _common_pb2.Platform
    screen: str
    app_version: str
    locale: str
    limit: int
    def __init__(self, user_id: _Optional[str] = ..., platform: _Optional[_Union[_common_pb2.Platform, str]] = ..., screen: _Optional[str] = ..., app_version: _Optional[str] = ..., locale: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class FetchMessagesResponse(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[InAppMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[InAppMessage, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("user_id", "platform", "app_version", "locale", "last_message_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    platform: _common_pb2.Platform
    app_version: str
    locale: str
    last_message_id: str
    def __init__(self, user_id: _Optional[str] = ..., platform: _Optional[_Union[_common_pb2.Platform, str]] = ..., app_version: _Optional[str] = ..., locale: _Optional[str] = ..., last_message_id: _Optional[str] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("message", "keep_alive_time")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    message: InAppMessage
    keep_alive_time: _timestamp_pb2.Timestamp
    def __init__(self, message: _Optional[_Union[InAppMessage, _Mapping]] = ..., keep_alive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SurveyAnswer(_message.Message):
    __slots__ = ("question_id", "choices", "rating", "text")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    rating: int
    text: str
    def __init__(self, question_id: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., rating: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class ReportInteractionRequest(_message.Message):
    __slots__ = ("message_id", "user_id", "type", "button_id", "answers", "occurred_time")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BUTTON_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_TIME_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    user_id: str
    type: InteractionType
    button_id: str
    answers: _containers.RepeatedCompositeFieldContainer[SurveyAnswer]
    occurred_time: _timestamp_pb2.Timestamp
    def __init__(self, message_id: _Optional[str] = ..., user_id: _Optional[str] = ..., type: _Optional[_Union[InteractionType, str]] = ..., button_id: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[SurveyAnswer, _Mapping]]] = ..., occurred_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportInteractionResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    def __init__(self, recorded: _Optional[bool] = ...) -> None: ...

class GetCampaignStatsRequest(_message.Message):
    __slots__ = ("campaign_id", "start_time", "end_time", "start_date", "end_date")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    start_date: str
    end_date: str
    def __init__(self, campaign_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ...) -> None: ...

class FunnelStep(_message.Message):
    __slots__ = ("stage", "count", "rate")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    stage: FunnelStage
    count: int
    rate: float
    def __init__(self, stage: _Optional[_Union[FunnelStage, str]] = ..., count: _Optional[int] = ..., rate: _Optional[float] = ...) -> None: ...

class VariantStats(_message.Message):
    __slots__ = ("variant_id", "control", "sent", "delivered", "impressions", "clicks_by_button", "dismissals", "conversions", "survey_answers", "impression_rate", "click_rate", "conversion_rate", "uplift", "uplift_ci_low", "uplift_ci_high", "expired", "dropped", "dropped_by_reason", "waiting", "delivery_rate", "funnel")
    class ClicksByButtonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SurveyAnswersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DroppedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_BY_BUTTON_FIELD_NUMBER: _ClassVar[int]
    DISMISSALS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    IMPRESSION_RATE_FIELD_NUMBER: _ClassVar[int]
    CLICK_RATE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_RATE_FIELD_NUMBER: _ClassVar[int]
    FUNNEL_FIELD_NUMBER: _ClassVar[int]
    variant_id: str
    control: bool
    sent: int
    delivered: int
    impressions: int
    clicks_by_button: _containers.ScalarMap[str, int]
    dismissals: int
    conversions: int
    survey_answers: _containers.ScalarMap[str, int]
    impression_rate: float
    click_rate: float
    conversion_rate: float
    uplift: float
    uplift_ci_low: float
    uplift_ci_high: float
    expired: int
    dropped: int
    dropped_by_reason: _containers.ScalarMap[str, int]
    waiting: int
    delivery_rate: float
    funnel: _containers.RepeatedCompositeFieldContainer[FunnelStep]
    def __init__(self, variant_id: _Optional[str] = ..., control: _Optional[bool] = ..., sent: _Optional[int] = ..., delivered: _Optional[int] = ..., impressions: _Optional[int] = ..., clicks_by_button: _Optional[_Mapping[str, int]] = ..., dismissals: _Optional[int] = ..., conversions: _Optional[int] = ..., survey_answers: _Optional[_Mapping[str, int]] = ..., impression_rate: _Optional[float] = ..., click_rate: _Optional[float] = ..., conversion_rate: _Optional[float] = ..., uplift: _Optional[float] = ..., uplift_ci_low: _Optional[float] = ..., uplift_ci_high: _Optional[float] = ..., expired: _Optional[int] = ..., dropped: _Optional[int] = ..., dropped_by_reason: _Optional[_Mapping[str, int]] = ..., waiting: _Optional[int] = ..., delivery_rate: _Optional[float] = ..., funnel: _Optional[_Iterable[_Union[FunnelStep, _Mapping]]] = ...) -> None: ...

class DailyStats(_message.Message):
    __slots__ = ("date", "variants")
    DATE_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    date: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantStats]
    def __init__(self, date: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantStats, _Mapping]]] = ...) -> None: ...

class GetCampaignStatsResponse(_message.Message):
    __slots__ = ("variants", "days", "time_zone")
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    variants: _containers.RepeatedCompositeFieldContainer[VariantStats]
    days: _containers.RepeatedCompositeFieldContainer[DailyStats]
    time_zone: str
    def __init__(self, variants: _Optional[_Iterable[_Union[VariantStats, _Mapping]]] = ..., days: _Optional[_Iterable[_Union[DailyStats, _Mapping]]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class ListSurveyAnswersRequest(_message.Message):
    __slots__ = ("campaign_id", "variant_id", "start_time", "end_time", "page_size", "page_token")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    variant_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, campaign_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SurveyAnswerRecord(_message.Message):
    __slots__ = ("message_id", "user_id", "variant_id", "question_id", "choices", "rating", "text", "answer_time")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    user_id: str
    variant_id: str
    question_id: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    rating: int
    text: str
    answer_time: _timestamp_pb2.Timestamp
    def __init__(self, message_id: _Optional[str] = ..., user_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., question_id: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., rating: _Optional[int] = ..., text: _Optional[str] = ..., answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSurveyAnswersResponse(_message.Message):
    __slots__ = ("answers", "next_page_token")
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[SurveyAnswerRecord]
    next_page_token: str
    def __init__(self, answers: _Optional[_Iterable[_Union[SurveyAnswerRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
