"""Protobuf wire framing, so the log reader forwards stored bytes without parsing them again.

The log stores each event (or profile update) serialized. The `events` of every
`ApplyEventsRequest` and the `updates` of `ApplyProfileUpdatesRequest` are field 2, and
protobuf merges repeated fields by concatenation, so a request is its `app_id` (field 1), each
item framed as a field-2 record, and its `span` (field 3).
"""

from __future__ import annotations

from nudge.common.v1 import common_pb2

_APP_ID_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)
_ITEMS_TAG = b"\x12"  # field 2
_SPAN_TAG = b"\x1a"  # field 3


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, data: bytes) -> bytes:
    return tag + varint(len(data)) + data


def request_bytes(app_id: str, payloads: list[bytes], span: common_pb2.LogSpan | None = None) -> bytes:
    """The serialized Apply*Request of one app holding every item, in order, and their span."""
    parts = [_field(_APP_ID_TAG, app_id.encode())]
    parts += [_ITEMS_TAG + varint(len(p)) + p for p in payloads]
    if span is not None:
        parts.append(_field(_SPAN_TAG, span.SerializeToString()))
    return b"".join(parts)
