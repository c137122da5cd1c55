"""Protobuf wire framing, so the outbox forwards stored bytes without parsing them again.

An outbox row holds a run of length-delimited field-2 records: exactly how the `events` of
`ApplyEventsRequest` (segmentation and decision) and the `updates` of
`ApplyProfileUpdatesRequest` are encoded. Protobuf merges repeated fields by concatenation,
so a request is its `app_id` (field 1) followed by the rows' payloads, joined.
"""

from __future__ import annotations

from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal

_ITEMS_TAG = b"\x12"  # field 2, wire type 2 (length-delimited)
_APP_ID_TAG = b"\x0a"  # field 1, wire type 2


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def item_header(length: int) -> bytes:
    """What precedes an item of `length` bytes in the repeated field 2."""
    return _ITEMS_TAG + varint(length)


def frame_item(payload: bytes) -> bytes:
    return item_header(len(payload)) + payload


def request_bytes(app_id: str, framed_items: list[bytes]) -> bytes:
    """The serialized Apply*Request of one app holding every framed item, in order."""
    app = app_id.encode()
    return b"".join([_APP_ID_TAG, varint(len(app)), app, *framed_items])


def without_user(kind: str, payload: bytes, user_id: str) -> tuple[bytes, int]:
    """An outbox payload without the items of one user, and how many items remain."""
    if kind == "profile":
        request = seg_internal.ApplyProfileUpdatesRequest.FromString(payload)
        kept = [u for u in request.updates if u.user_id != user_id]
        return seg_internal.ApplyProfileUpdatesRequest(updates=kept).SerializeToString(), len(kept)
    request = seg_internal.ApplyEventsRequest.FromString(payload)
    kept = [e for e in request.events if e.user_id != user_id]
    return seg_internal.ApplyEventsRequest(events=kept).SerializeToString(), len(kept)


def split_items(payload: bytes) -> list[bytes]:
    """The framed items of an outbox payload, each with its header (so `b"".join` of a part of
    them is again a payload)."""
    items: list[bytes] = []
    view = memoryview(payload)
    at = 0
    while at < len(view):
        start = at
        at += 1  # the tag
        length = shift = 0
        while True:
            byte = view[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        at += length
        items.append(bytes(view[start:at]))
    return items
