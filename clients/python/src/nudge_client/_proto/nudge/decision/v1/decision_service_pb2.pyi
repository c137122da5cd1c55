import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from nudge_client._proto.nudge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CampaignStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_STATUS_UNSPECIFIED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_DRAFT: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_ACTIVE: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_PAUSED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_ARCHIVED: _ClassVar[CampaignStatus]

class DeliveryMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_MODE_UNSPECIFIED: _ClassVar[DeliveryMode]
    DELIVERY_MODE_ON_REQUEST: _ClassVar[DeliveryMode]
    DELIVERY_MODE_TRIGGERED: _ClassVar[DeliveryMode]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_CHOSEN: _ClassVar[Verdict]
    VERDICT_EXCLUDED: _ClassVar[Verdict]
    VERDICT_CONTROL: _ClassVar[Verdict]
    VERDICT_LOWER_PRIORITY: _ClassVar[Verdict]

class PendingSendState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PENDING_SEND_STATE_UNSPECIFIED: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_WAITING_FOR_DELAY: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_HELD: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_WAITING_FOR_SEGMENTATION: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_DUE: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_WILL_DROP: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_RELEASED: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_CONTROL: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_CANCELLED: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_DROPPED: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_EXPIRED: _ClassVar[PendingSendState]
    PENDING_SEND_STATE_FAILED: _ClassVar[PendingSendState]
CAMPAIGN_STATUS_UNSPECIFIED: CampaignStatus
CAMPAIGN_STATUS_DRAFT: CampaignStatus
CAMPAIGN_STATUS_ACTIVE: CampaignStatus
CAMPAIGN_STATUS_PAUSED: CampaignStatus
CAMPAIGN_STATUS_ARCHIVED: CampaignStatus
DELIVERY_MODE_UNSPECIFIED: DeliveryMode
DELIVERY_MODE_ON_REQUEST: DeliveryMode
DELIVERY_MODE_TRIGGERED: DeliveryMode
VERDICT_UNSPECIFIED: Verdict
VERDICT_CHOSEN: Verdict
VERDICT_EXCLUDED: Verdict
VERDICT_CONTROL: Verdict
VERDICT_LOWER_PRIORITY: Verdict
PENDING_SEND_STATE_UNSPECIFIED: PendingSendState
PENDING_SEND_STATE_WAITING_FOR_DELAY: PendingSendState
PENDING_SEND_STATE_HELD: PendingSendState
PENDING_SEND_STATE_WAITING_FOR_SEGMENTATION: PendingSendState
PENDING_SEND_STATE_DUE: PendingSendState
PENDING_SEND_STATE_WILL_DROP: PendingSendState
PENDING_SEND_STATE_RELEASED: PendingSendState
PENDING_SEND_STATE_CONTROL: PendingSendState
PENDING_SEND_STATE_CANCELLED: PendingSendState
PENDING_SEND_STATE_DROPPED: PendingSendState
PENDING_SEND_STATE_EXPIRED: PendingSendState
PENDING_SEND_STATE_FAILED: PendingSendState

class Audience(_message.Message):
    __slots__ = ("include_segment_ids", "exclude_segment_ids", "platforms", "min_app_version", "max_app_version", "screens")
    INCLUDE_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    MIN_APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCREENS_FIELD_NUMBER: _ClassVar[int]
    include_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    exclude_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    platforms: _containers.RepeatedScalarFieldContainer[_common_pb2.Platform]
    min_app_version: str
    max_app_version: str
    screens: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, include_segment_ids: _Optional[_Iterable[str]] = ..., exclude_segment_ids: _Optional[_Iterable[str]] = ..., platforms: _Optional[_Iterable[_Union[_common_pb2.Platform, str]]] = ..., min_app_version: _Optional[str] = ..., max_app_version: _Optional[str] = ..., screens: _Optional[_Iterable[str]] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("event_name", "segment_entered_id", "property_filters", "delay", "exception_events")
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ENTERED_ID_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FILTERS_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    EXCEPTION_EVENTS_FIELD_NUMBER: _ClassVar[int]
    event_name: str
    segment_entered_id: str
    property_filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.PropertyFilter]
    delay: _duration_pb2.Duration
    exception_events: _containers.RepeatedCompositeFieldContainer[ExceptionEvent]
    def __init__(self, event_name: _Optional[str] = ..., segment_entered_id: _Optional[str] = ..., property_filters: _Optional[_Iterable[_Union[_common_pb2.PropertyFilter, _Mapping]]] = ..., delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., exception_events: _Optional[_Iterable[_Union[ExceptionEvent, _Mapping]]] = ...) -> None: ...

class ExceptionEvent(_message.Message):
    __slots__ = ("event_name", "property_filters")
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FILTERS_FIELD_NUMBER: _ClassVar[int]
    event_name: str
    property_filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.PropertyFilter]
    def __init__(self, event_name: _Optional[str] = ..., property_filters: _Optional[_Iterable[_Union[_common_pb2.PropertyFilter, _Mapping]]] = ...) -> None: ...

class SendWindow(_message.Message):
    __slots__ = ("start_minute", "end_minute", "weekdays", "drop_outside_window")
    START_MINUTE_FIELD_NUMBER: _ClassVar[int]
    END_MINUTE_FIELD_NUMBER: _ClassVar[int]
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    DROP_OUTSIDE_WINDOW_FIELD_NUMBER: _ClassVar[int]
    start_minute: int
    end_minute: int
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    drop_outside_window: bool
    def __init__(self, start_minute: _Optional[int] = ..., end_minute: _Optional[int] = ..., weekdays: _Optional[_Iterable[int]] = ..., drop_outside_window: _Optional[bool] = ...) -> None: ...

class CapRule(_message.Message):
    __slots__ = ("id", "max_messages", "rolling", "calendar_days", "calendar_weeks", "tag")
    ID_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    ROLLING_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_DAYS_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_WEEKS_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    max_messages: int
    rolling: _duration_pb2.Duration
    calendar_days: int
    calendar_weeks: int
    tag: str
    def __init__(self, id: _Optional[str] = ..., max_messages: _Optional[int] = ..., rolling: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., calendar_days: _Optional[int] = ..., calendar_weeks: _Optional[int] = ..., tag: _Optional[str] = ...) -> None: ...

class CampaignCaps(_message.Message):
    __slots__ = ("lifetime_max", "reeligibility_interval", "bypass_app_caps")
    LIFETIME_MAX_FIELD_NUMBER: _ClassVar[int]
    REELIGIBILITY_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    BYPASS_APP_CAPS_FIELD_NUMBER: _ClassVar[int]
    lifetime_max: int
    reeligibility_interval: _duration_pb2.Duration
    bypass_app_caps: bool
    def __init__(self, lifetime_max: _Optional[int] = ..., reeligibility_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., bypass_app_caps: _Optional[bool] = ...) -> None: ...

class LocalizedContent(_message.Message):
    __slots__ = ("locale", "content")
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    locale: str
    content: _common_pb2.MessageContent
    def __init__(self, locale: _Optional[str] = ..., content: _Optional[_Union[_common_pb2.MessageContent, _Mapping]] = ...) -> None: ...

class Variant(_message.Message):
    __slots__ = ("id", "name", "weight", "contents", "default_locale")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LOCALE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    weight: int
    contents: _containers.RepeatedCompositeFieldContainer[LocalizedContent]
    default_locale: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., weight: _Optional[int] = ..., contents: _Optional[_Iterable[_Union[LocalizedContent, _Mapping]]] = ..., default_locale: _Optional[str] = ...) -> None: ...

class Conversion(_message.Message):
    __slots__ = ("event_names", "deadline")
    EVENT_NAMES_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    event_names: _containers.RepeatedScalarFieldContainer[str]
    deadline: _duration_pb2.Duration
    def __init__(self, event_names: _Optional[_Iterable[str]] = ..., deadline: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Campaign(_message.Message):
    __slots__ = ("id", "version", "name", "tags", "priority", "status", "start_time", "end_time", "audience", "delivery_mode", "triggers", "send_window", "variants", "control_weight", "message_ttl", "conversion", "caps", "create_time", "update_time", "key")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_MODE_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    SEND_WINDOW_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TTL_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    CAPS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: int
    name: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    priority: int
    status: CampaignStatus
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    audience: Audience
    delivery_mode: DeliveryMode
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    send_window: SendWindow
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    control_weight: int
    message_ttl: _duration_pb2.Duration
    conversion: Conversion
    caps: CampaignCaps
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    key: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[int] = ..., name: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., priority: _Optional[int] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., audience: _Optional[_Union[Audience, _Mapping]] = ..., delivery_mode: _Optional[_Union[DeliveryMode, str]] = ..., triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ..., send_window: _Optional[_Union[SendWindow, _Mapping]] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., control_weight: _Optional[int] = ..., message_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., conversion: _Optional[_Union[Conversion, _Mapping]] = ..., caps: _Optional[_Union[CampaignCaps, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "request_id")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    request_id: str
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class UpdateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "expected_version", "request_id")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    expected_version: int
    request_id: str
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., expected_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("campaign_id", "version", "key")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    version: int
    key: str
    def __init__(self, campaign_id: _Optional[str] = ..., version: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

class GetCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "status", "key")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    status: CampaignStatus
    key: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., key: _Optional[str] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[Campaign]
    next_page_token: str
    def __init__(self, campaigns: _Optional[_Iterable[_Union[Campaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetCampaignStatusRequest(_message.Message):
    __slots__ = ("campaign_id", "status", "request_id")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    status: CampaignStatus
    request_id: str
    def __init__(self, campaign_id: _Optional[str] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SetCampaignStatusResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class RequestContext(_message.Message):
    __slots__ = ("platform", "screen", "app_version", "locale")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    SCREEN_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    platform: _common_pb2.Platform
    screen: str
    app_version: str
    locale: str
    def __init__(self, platform: _Optional[_Union[_common_pb2.Platform, str]] = ..., screen: _Optional[str] = ..., app_version: _Optional[str] = ..., locale: _Optional[str] = ...) -> None: ...

class ExplainDecisionRequest(_message.Message):
    __slots__ = ("user_id", "context")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    context: RequestContext
    def __init__(self, user_id: _Optional[str] = ..., context: _Optional[_Union[RequestContext, _Mapping]] = ...) -> None: ...

class CampaignExplanation(_message.Message):
    __slots__ = ("campaign_id", "campaign_name", "verdict", "reason", "detail", "until_time", "pending_sends", "rule")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_NAME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIME_FIELD_NUMBER: _ClassVar[int]
    PENDING_SENDS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    campaign_name: str
    verdict: Verdict
    reason: str
    detail: str
    until_time: _timestamp_pb2.Timestamp
    pending_sends: _containers.RepeatedCompositeFieldContainer[PendingSend]
    rule: str
    def __init__(self, campaign_id: _Optional[str] = ..., campaign_name: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ..., until_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pending_sends: _Optional[_Iterable[_Union[PendingSend, _Mapping]]] = ..., rule: _Optional[str] = ...) -> None: ...

class ExplainDecisionResponse(_message.Message):
    __slots__ = ("campaigns", "user")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[CampaignExplanation]
    user: _common_pb2.UserContext
    def __init__(self, campaigns: _Optional[_Iterable[_Union[CampaignExplanation, _Mapping]]] = ..., user: _Optional[_Union[_common_pb2.UserContext, _Mapping]] = ...) -> None: ...

class PendingSend(_message.Message):
    __slots__ = ("id", "campaign_id", "campaign_name", "trigger_index", "cause", "state", "reason", "rule", "detail", "trigger_time", "due_time", "expire_time", "until_time", "finish_time", "cancelled_by_event_name", "cancelled_by_event_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_NAME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_TIME_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_BY_EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_BY_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    campaign_id: str
    campaign_name: str
    trigger_index: int
    cause: str
    state: PendingSendState
    reason: str
    rule: str
    detail: str
    trigger_time: _timestamp_pb2.Timestamp
    due_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    until_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    cancelled_by_event_name: str
    cancelled_by_event_id: str
    def __init__(self, id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., campaign_name: _Optional[str] = ..., trigger_index: _Optional[int] = ..., cause: _Optional[str] = ..., state: _Optional[_Union[PendingSendState, str]] = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ..., detail: _Optional[str] = ..., trigger_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancelled_by_event_name: _Optional[str] = ..., cancelled_by_event_id: _Optional[str] = ...) -> None: ...

class AppSettings(_message.Message):
    __slots__ = ("default_time_zone", "cap_rules", "quiet_hours", "default_locale")
    DEFAULT_TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    CAP_RULES_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LOCALE_FIELD_NUMBER: _ClassVar[int]
    default_time_zone: str
    cap_rules: _containers.RepeatedCompositeFieldContainer[CapRule]
    quiet_hours: SendWindow
    default_locale: str
    def __init__(self, default_time_zone: _Optional[str] = ..., cap_rules: _Optional[_Iterable[_Union[CapRule, _Mapping]]] = ..., quiet_hours: _Optional[_Union[SendWindow, _Mapping]] = ..., default_locale: _Optional[str] = ...) -> None: ...

class GetAppSettingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAppSettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: AppSettings
    def __init__(self, settings: _Optional[_Union[AppSettings, _Mapping]] = ...) -> None: ...

class UpdateAppSettingsRequest(_message.Message):
    __slots__ = ("settings", "request_id")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    settings: AppSettings
    request_id: str
    def __init__(self, settings: _Optional[_Union[AppSettings, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateAppSettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: AppSettings
    def __init__(self, settings: _Optional[_Union[AppSettings, _Mapping]] = ...) -> None: ...

class ListPendingSendsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPendingSendsResponse(_message.Message):
    __slots__ = ("pending_sends", "next_page_token")
    PENDING_SENDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pending_sends: _containers.RepeatedCompositeFieldContainer[PendingSend]
    next_page_token: str
    def __init__(self, pending_sends: _Optional[_Iterable[_Union[PendingSend, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PreviewMessageRequest(_message.Message):
    __slots__ = ("campaign_id", "version", "variant_id", "locale", "user_id", "attributes", "event_properties")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.AttributeValue, _Mapping]] = ...) -> None: ...
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    EVENT_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    version: int
    variant_id: str
    locale: str
    user_id: str
    attributes: _containers.MessageMap[str, _common_pb2.AttributeValue]
    event_properties: _struct_pb2.Struct
    def __init__(self, campaign_id: _Optional[str] = ..., version: _Optional[int] = ..., variant_id: _Optional[str] = ..., locale: _Optional[str] = ..., user_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, _common_pb2.AttributeValue]] = ..., event_properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TemplateError(_message.Message):
    __slots__ = ("field", "message")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    field: str
    message: str
    def __init__(self, field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class PreviewMessageResponse(_message.Message):
    __slots__ = ("campaign_id", "campaign_version", "variant_id", "locale", "content", "errors", "user")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    campaign_version: int
    variant_id: str
    locale: str
    content: _common_pb2.MessageContent
    errors: _containers.RepeatedCompositeFieldContainer[TemplateError]
    user: _common_pb2.UserContext
    def __init__(self, campaign_id: _Optional[str] = ..., campaign_version: _Optional[int] = ..., variant_id: _Optional[str] = ..., locale: _Optional[str] = ..., content: _Optional[_Union[_common_pb2.MessageContent, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[TemplateError, _Mapping]]] = ..., user: _Optional[_Union[_common_pb2.UserContext, _Mapping]] = ...) -> None: ...

class SendTestMessageRequest(_message.Message):
    __slots__ = ("campaign_id", "variant_id", "user_id", "locale", "event_properties", "request_id")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    EVENT_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    variant_id: str
    user_id: str
    locale: str
    event_properties: _struct_pb2.Struct
    request_id: str
    def __init__(self, campaign_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., locale: _Optional[str] = ..., event_properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SendTestMessageResponse(_message.Message):
    __slots__ = ("message_id", "variant_id", "locale", "content", "expire_time")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    variant_id: str
    locale: str
    content: _common_pb2.MessageContent
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, message_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., locale: _Optional[str] = ..., content: _Optional[_Union[_common_pb2.MessageContent, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
