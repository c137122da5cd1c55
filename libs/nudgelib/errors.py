"""Domain errors and their gRPC form.

Handlers raise these; the server interceptor turns them into a status with a
`google.rpc.ErrorInfo` (and `BadRequest` field violations or `RetryInfo` where they apply),
so no handler answers `UNKNOWN`.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from nudgelib.violations import FieldViolation

DOMAIN = "nudge.dev"


class NudgeError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:  # a finer reason than the code's, e.g. USER_TOKEN_EXPIRED
            self.reason = reason

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]

    def to_status(self) -> grpc.Status:
        proto = status_pb2.Status(
            code=self.code.value[0], message=self.message, details=self.details()
        )
        return rpc_status.to_status(proto)


class InvalidArgument(NudgeError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation) -> None:
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations = violations
        text = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {text}")

    @classmethod
    def field(cls, field: str, description: str) -> "InvalidArgument":
        return cls(FieldViolation(field, description))

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        return super().details() + [packed]


class NotFound(NudgeError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(NudgeError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class Aborted(NudgeError):
    """A concurrent change won (e.g. an expected version no longer matches)."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class FailedPrecondition(NudgeError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Unauthenticated(NudgeError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(NudgeError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unavailable(NudgeError):
    """A dependency is down; the caller may retry, after `retry_after_seconds` (RetryInfo)."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def details(self) -> list[any_pb2.Any]:
        return super().details() + [_retry_info(self.retry_after_seconds)]


class Unimplemented(NudgeError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


class ResourceExhausted(NudgeError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(f"{message}; retry after {retry_after_seconds:g}s")
        self.retry_after_seconds = retry_after_seconds

    def details(self) -> list[any_pb2.Any]:
        return super().details() + [_retry_info(self.retry_after_seconds)]


def _retry_info(seconds: float) -> any_pb2.Any:
    delay = duration_pb2.Duration()
    delay.FromMilliseconds(int(seconds * 1000))
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return packed


_BY_CODE = {c.value[0]: c for c in grpc.StatusCode}


def error_of_code(code: int, message: str) -> NudgeError:
    """A NudgeError answering with the status another service gave (by google.rpc.Code
    value), for errors that travel inside a response rather than as the call's status."""
    status = _BY_CODE.get(code, grpc.StatusCode.INTERNAL)
    if status is grpc.StatusCode.UNAVAILABLE:
        return Unavailable(message)  # with its retry advice
    error = NudgeError(message)
    error.code, error.reason = status, status.name
    return error


def internal_status() -> grpc.Status:
    """What a caller sees for a bug: no internals leaked."""
    proto = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
    return rpc_status.to_status(proto)


def violations_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[FieldViolation]:
    """The BadRequest field violations carried by an error received from a Nudge service."""
    found: list[FieldViolation] = []
    raw = None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            raw = value
    if raw is None:
        return found
    status = status_pb2.Status.FromString(raw)
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return found
