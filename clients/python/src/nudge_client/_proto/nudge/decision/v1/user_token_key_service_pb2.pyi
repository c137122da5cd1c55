import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserTokenAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USER_TOKEN_ALGORITHM_UNSPECIFIED: _ClassVar[UserTokenAlgorithm]
    USER_TOKEN_ALGORITHM_ES256: _ClassVar[UserTokenAlgorithm]
    USER_TOKEN_ALGORITHM_RS256: _ClassVar[UserTokenAlgorithm]
USER_TOKEN_ALGORITHM_UNSPECIFIED: UserTokenAlgorithm
USER_TOKEN_ALGORITHM_ES256: UserTokenAlgorithm
USER_TOKEN_ALGORITHM_RS256: UserTokenAlgorithm

class UserTokenKey(_message.Message):
    __slots__ = ("key_id", "algorithm", "public_key_pem", "create_time", "revoke_time")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    algorithm: UserTokenAlgorithm
    public_key_pem: str
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., algorithm: _Optional[_Union[UserTokenAlgorithm, str]] = ..., public_key_pem: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AddUserTokenKeyRequest(_message.Message):
    __slots__ = ("public_key", "key_id")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    public_key: str
    key_id: str
    def __init__(self, public_key: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class AddUserTokenKeyResponse(_message.Message):
    __slots__ = ("key", "created")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    key: UserTokenKey
    created: bool
    def __init__(self, key: _Optional[_Union[UserTokenKey, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ListUserTokenKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "show_revoked")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHOW_REVOKED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    show_revoked: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., show_revoked: _Optional[bool] = ...) -> None: ...

class ListUserTokenKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[UserTokenKey]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[UserTokenKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeUserTokenKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RevokeUserTokenKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: UserTokenKey
    def __init__(self, key: _Optional[_Union[UserTokenKey, _Mapping]] = ...) -> None: ...
