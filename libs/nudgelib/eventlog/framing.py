"""Protobuf wire framing, so a log reader forwards stored bytes without parsing them again.

Every internal apply request a log feeds (`ApplyEvents`, `ApplyProfileUpdates`,
`ApplyUserChanges`, `IngestEvents`) holds its app in field 1 and its items in the repeated
field 2, and protobuf merges repeated fields by concatenation: a request is its `app_id`, each
item framed as a field-2 record (framed in SQL as it is read, see `pb_item_header` in the
producers' migrations), and for ingestion's consumers the items' `span` (field 3).
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


def frame_item(payload: bytes) -> bytes:
    """One item as a field-2 record, as the SQL framing writes it."""
    return _ITEMS_TAG + varint(len(payload)) + payload


def request_bytes(app_id: str, framed: list[bytes], span: common_pb2.LogSpan | None = None) -> bytes:
    """The serialized request of one app holding every framed run of items, in order, and
    their span."""
    app = app_id.encode()
    parts = [_APP_ID_TAG, varint(len(app)), app, *framed]
    if span is not None:
        data = span.SerializeToString()
        parts += [_SPAN_TAG, varint(len(data)), data]
    return b"".join(parts)


def split_items(framed: bytes) -> list[bytes]:
    """The items of a framed run, each without its header."""
    items: list[bytes] = []
    view = memoryview(framed)
    at = 0
    while at < len(view):
        at += 1  # the tag
        length = shift = 0
        while True:
            byte = view[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        items.append(bytes(view[at:at + length]))
        at += length
    return items
