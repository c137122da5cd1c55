import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLATFORM_UNSPECIFIED: _ClassVar[Platform]
    PLATFORM_IOS: _ClassVar[Platform]
    PLATFORM_ANDROID: _ClassVar[Platform]
    PLATFORM_WEB: _ClassVar[Platform]

class Layout(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LAYOUT_UNSPECIFIED: _ClassVar[Layout]
    LAYOUT_BANNER: _ClassVar[Layout]
    LAYOUT_MODAL: _ClassVar[Layout]
    LAYOUT_FULL_SCREEN: _ClassVar[Layout]
    LAYOUT_CARD: _ClassVar[Layout]
    LAYOUT_CAROUSEL: _ClassVar[Layout]
    LAYOUT_SURVEY: _ClassVar[Layout]
    LAYOUT_TOOLTIP: _ClassVar[Layout]

class ButtonActionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUTTON_ACTION_TYPE_UNSPECIFIED: _ClassVar[ButtonActionType]
    BUTTON_ACTION_TYPE_DISMISS: _ClassVar[ButtonActionType]
    BUTTON_ACTION_TYPE_DEEP_LINK: _ClassVar[ButtonActionType]
    BUTTON_ACTION_TYPE_URL: _ClassVar[ButtonActionType]
    BUTTON_ACTION_TYPE_NEXT: _ClassVar[ButtonActionType]

class QuestionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUESTION_TYPE_UNSPECIFIED: _ClassVar[QuestionType]
    QUESTION_TYPE_SINGLE_CHOICE: _ClassVar[QuestionType]
    QUESTION_TYPE_MULTIPLE_CHOICE: _ClassVar[QuestionType]
    QUESTION_TYPE_RATING: _ClassVar[QuestionType]
    QUESTION_TYPE_FREE_TEXT: _ClassVar[QuestionType]

class PropertyOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPERTY_OPERATOR_UNSPECIFIED: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_EQUALS: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_NOT_EQUALS: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_GREATER: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_GREATER_OR_EQUAL: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_LESS: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_LESS_OR_EQUAL: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_IN: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_NOT_IN: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_CONTAINS: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_STARTS_WITH: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_EXISTS: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_IS_EMPTY: _ClassVar[PropertyOperator]
    PROPERTY_OPERATOR_WITHIN_DISTANCE: _ClassVar[PropertyOperator]
PLATFORM_UNSPECIFIED: Platform
PLATFORM_IOS: Platform
PLATFORM_ANDROID: Platform
PLATFORM_WEB: Platform
LAYOUT_UNSPECIFIED: Layout
LAYOUT_BANNER: Layout
LAYOUT_MODAL: Layout
LAYOUT_FULL_SCREEN: Layout
LAYOUT_CARD: Layout
LAYOUT_CAROUSEL: Layout
LAYOUT_SURVEY: Layout
LAYOUT_TOOLTIP: Layout
BUTTON_ACTION_TYPE_UNSPECIFIED: ButtonActionType
BUTTON_ACTION_TYPE_DISMISS: ButtonActionType
BUTTON_ACTION_TYPE_DEEP_LINK: ButtonActionType
BUTTON_ACTION_TYPE_URL: ButtonActionType
BUTTON_ACTION_TYPE_NEXT: ButtonActionType
QUESTION_TYPE_UNSPECIFIED: QuestionType
QUESTION_TYPE_SINGLE_CHOICE: QuestionType
QUESTION_TYPE_MULTIPLE_CHOICE: QuestionType
QUESTION_TYPE_RATING: QuestionType
QUESTION_TYPE_FREE_TEXT: QuestionType
PROPERTY_OPERATOR_UNSPECIFIED: PropertyOperator
PROPERTY_OPERATOR_EQUALS: PropertyOperator
PROPERTY_OPERATOR_NOT_EQUALS: PropertyOperator
PROPERTY_OPERATOR_GREATER: PropertyOperator
PROPERTY_OPERATOR_GREATER_OR_EQUAL: PropertyOperator
PROPERTY_OPERATOR_LESS: PropertyOperator
PROPERTY_OPERATOR_LESS_OR_EQUAL: PropertyOperator
PROPERTY_OPERATOR_IN: PropertyOperator
PROPERTY_OPERATOR_NOT_IN: PropertyOperator
PROPERTY_OPERATOR_CONTAINS: PropertyOperator
PROPERTY_OPERATOR_STARTS_WITH: PropertyOperator
PROPERTY_OPERATOR_EXISTS: PropertyOperator
PROPERTY_OPERATOR_IS_EMPTY: PropertyOperator
PROPERTY_OPERATOR_WITHIN_DISTANCE: PropertyOperator

class AttributeValue(_message.Message):
    __slots__ = ("string_value", "int_value", "double_value", "bool_value", "time_value", "string_list_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int_value: int
    double_value: float
    bool_value: bool
    time_value: _timestamp_pb2.Timestamp
    string_list_value: StringList
    def __init__(self, string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., time_value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., string_list_value: _Optional[_Union[StringList, _Mapping]] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class Button(_message.Message):
    __slots__ = ("id", "text", "action", "target")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    action: ButtonActionType
    target: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., action: _Optional[_Union[ButtonActionType, str]] = ..., target: _Optional[str] = ...) -> None: ...

class Theme(_message.Message):
    __slots__ = ("background_color", "text_color", "button_color", "button_text_color")
    BACKGROUND_COLOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_COLOR_FIELD_NUMBER: _ClassVar[int]
    BUTTON_COLOR_FIELD_NUMBER: _ClassVar[int]
    BUTTON_TEXT_COLOR_FIELD_NUMBER: _ClassVar[int]
    background_color: str
    text_color: str
    button_color: str
    button_text_color: str
    def __init__(self, background_color: _Optional[str] = ..., text_color: _Optional[str] = ..., button_color: _Optional[str] = ..., button_text_color: _Optional[str] = ...) -> None: ...

class Slide(_message.Message):
    __slots__ = ("title", "body", "image_url", "buttons")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    BUTTONS_FIELD_NUMBER: _ClassVar[int]
    title: str
    body: str
    image_url: str
    buttons: _containers.RepeatedCompositeFieldContainer[Button]
    def __init__(self, title: _Optional[str] = ..., body: _Optional[str] = ..., image_url: _Optional[str] = ..., buttons: _Optional[_Iterable[_Union[Button, _Mapping]]] = ...) -> None: ...

class SurveyQuestion(_message.Message):
    __slots__ = ("id", "text", "type", "choices", "max_rating")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    MAX_RATING_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    type: QuestionType
    choices: _containers.RepeatedScalarFieldContainer[str]
    max_rating: int
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., type: _Optional[_Union[QuestionType, str]] = ..., choices: _Optional[_Iterable[str]] = ..., max_rating: _Optional[int] = ...) -> None: ...

class Anchor(_message.Message):
    __slots__ = ("screen", "element_id", "step")
    SCREEN_FIELD_NUMBER: _ClassVar[int]
    ELEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    screen: str
    element_id: str
    step: int
    def __init__(self, screen: _Optional[str] = ..., element_id: _Optional[str] = ..., step: _Optional[int] = ...) -> None: ...

class MessageContent(_message.Message):
    __slots__ = ("layout", "title", "body", "image_url", "buttons", "theme", "slides", "questions", "anchor", "custom_data")
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    BUTTONS_FIELD_NUMBER: _ClassVar[int]
    THEME_FIELD_NUMBER: _ClassVar[int]
    SLIDES_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_DATA_FIELD_NUMBER: _ClassVar[int]
    layout: Layout
    title: str
    body: str
    image_url: str
    buttons: _containers.RepeatedCompositeFieldContainer[Button]
    theme: Theme
    slides: _containers.RepeatedCompositeFieldContainer[Slide]
    questions: _containers.RepeatedCompositeFieldContainer[SurveyQuestion]
    anchor: Anchor
    custom_data: _struct_pb2.Struct
    def __init__(self, layout: _Optional[_Union[Layout, str]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., image_url: _Optional[str] = ..., buttons: _Optional[_Iterable[_Union[Button, _Mapping]]] = ..., theme: _Optional[_Union[Theme, _Mapping]] = ..., slides: _Optional[_Iterable[_Union[Slide, _Mapping]]] = ..., questions: _Optional[_Iterable[_Union[SurveyQuestion, _Mapping]]] = ..., anchor: _Optional[_Union[Anchor, _Mapping]] = ..., custom_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UserContext(_message.Message):
    __slots__ = ("user_id", "attributes", "time_zone", "locale", "first_seen_time", "last_seen_time", "platforms", "app_version", "segment_ids", "valid_until_time", "known")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_TIME_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    attributes: _containers.MessageMap[str, AttributeValue]
    time_zone: str
    locale: str
    first_seen_time: _timestamp_pb2.Timestamp
    last_seen_time: _timestamp_pb2.Timestamp
    platforms: _containers.RepeatedScalarFieldContainer[Platform]
    app_version: str
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    valid_until_time: _timestamp_pb2.Timestamp
    known: bool
    def __init__(self, user_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., time_zone: _Optional[str] = ..., locale: _Optional[str] = ..., first_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., platforms: _Optional[_Iterable[_Union[Platform, str]]] = ..., app_version: _Optional[str] = ..., segment_ids: _Optional[_Iterable[str]] = ..., valid_until_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., known: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "user_id", "name", "properties", "occurred_time", "platform", "app_version", "session_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_TIME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    user_id: str
    name: str
    properties: _struct_pb2.Struct
    occurred_time: _timestamp_pb2.Timestamp
    platform: Platform
    app_version: str
    session_id: str
    def __init__(self, event_id: _Optional[str] = ..., user_id: _Optional[str] = ..., name: _Optional[str] = ..., properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., occurred_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., platform: _Optional[_Union[Platform, str]] = ..., app_version: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class GeoCircle(_message.Message):
    __slots__ = ("latitude", "longitude", "radius_meters")
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    RADIUS_METERS_FIELD_NUMBER: _ClassVar[int]
    latitude: float
    longitude: float
    radius_meters: float
    def __init__(self, latitude: _Optional[float] = ..., longitude: _Optional[float] = ..., radius_meters: _Optional[float] = ...) -> None: ...

class PropertyFilter(_message.Message):
    __slots__ = ("name", "operator", "value", "circle")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CIRCLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    operator: PropertyOperator
    value: _struct_pb2.Value
    circle: GeoCircle
    def __init__(self, name: _Optional[str] = ..., operator: _Optional[_Union[PropertyOperator, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., circle: _Optional[_Union[GeoCircle, _Mapping]] = ...) -> None: ...

class LogSpan(_message.Message):
    __slots__ = ("source", "lanes", "positions")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LANES_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    source: str
    lanes: _containers.RepeatedScalarFieldContainer[int]
    positions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, source: _Optional[str] = ..., lanes: _Optional[_Iterable[int]] = ..., positions: _Optional[_Iterable[int]] = ...) -> None: ...

class LanePosition(_message.Message):
    __slots__ = ("lane", "position")
    LANE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    lane: int
    position: int
    def __init__(self, lane: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...
