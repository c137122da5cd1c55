"""What a failed call's status says beyond its code: the server's `google.rpc.RetryInfo`
delay, and the fields a `BadRequest` names (Nudge's services send both in the
`grpc-status-details-bin` trailer)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


def _details(error: grpc.RpcError) -> list:
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None  # type: ignore[attr-defined]
    for key, value in trailers or ():
        if key == _DETAILS_KEY:
            return list(status_pb2.Status.FromString(value).details)
    return []


def retry_delay(error: grpc.RpcError) -> float | None:
    """Seconds the server asked the caller to wait before retrying, or None without a
    RetryInfo."""
    for detail in _details(error):
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    return None


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """Field → description of each violation an INVALID_ARGUMENT names (empty without any)."""
    found: dict[str, str] = {}
    for detail in _details(error):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update((v.field, v.description) for v in bad.field_violations)
    return found
