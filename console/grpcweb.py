"""gRPC-Web framing (the protocol's data and trailer frames), for the one place the console
answers the web SDK itself: a preview frame, where the SDK fetches the rendered preview as
if it were a user's message and reports what the operator does with it. No I/O."""

from __future__ import annotations

from urllib.parse import quote

CONTENT_TYPE = "application/grpc-web+proto"
_DATA = 0x00
_TRAILERS = 0x80


def _frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + len(payload).to_bytes(4, "big") + payload


def response(message: bytes, status: int = 0, text: str = "") -> bytes:
    """A whole unary response: the message (none when `status` is not OK), then trailers."""
    trailers = f"grpc-status:{status}\r\ngrpc-message:{quote(text)}\r\n".encode()
    return (_frame(_DATA, message) if status == 0 else b"") + _frame(_TRAILERS, trailers)


def request_message(body: bytes) -> bytes:
    """The message of a unary request's first data frame; ValueError when it is not one."""
    if len(body) < 5 or body[0] != _DATA:
        raise ValueError("not a gRPC-Web data frame")
    size = int.from_bytes(body[1:5], "big")
    if len(body) < 5 + size:
        raise ValueError("truncated gRPC-Web frame")
    return body[5:5 + size]
