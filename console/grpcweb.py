"""gRPC-Web framing (the protocol's data and trailer frames), for the one place the console
answers the web SDK itself: a preview frame, where the SDK fetches the rendered preview as
if it were a user's message and reports what the operator does with it. No I/O."""

from __future__ import annotations

CONTENT_TYPE = "application/grpc-web+proto"
_DATA = 0x00
_TRAILERS = 0x80


def _frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + len(payload).to_bytes(4, "big") + payload


def response(message: bytes, status: int = 0, text: str = "") -> bytes:
    """A whole unary response: the message (none when `status` is not OK), then trailers."""
    trailers = f"grpc-status:{status}\r\ngrpc-message:{_percent(text)}\r\n".encode()
    return (_frame(_DATA, message) if status == 0 else b"") + _frame(_TRAILERS, trailers)


def _percent(text: str) -> str:
    """grpc-message as gRPC encodes it: printable ASCII but `%` as is, every other byte %XX."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in text.encode())

