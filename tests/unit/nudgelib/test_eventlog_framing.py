"""A request assembled from stored payloads reads back as the request it stands for."""

from __future__ import annotations

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudgelib.eventlog import framing


def _event(i: int, user: str) -> common_pb2.Event:
    e = common_pb2.Event(event_id=f"e{i}", user_id=user, name="tap")
    e.properties.update({"i": i, "long": "x" * (200 * i)})  # lengths past one varint byte
    return e


def test_stored_payloads_and_span_make_the_request_they_stand_for():
    events = [_event(i, u) for i, u in enumerate("abca")]
    span = common_pb2.LogSpan(source="ingestion", lanes=[3, 3, 7, 3], positions=[5, 9, 2, 1 << 40])
    framed = [b"".join(framing.frame_item(e.SerializeToString()) for e in events[:2]),
              framing.frame_item(events[2].SerializeToString()) + framing.frame_item(events[3].SerializeToString())]
    raw = framing.request_bytes("app_1", framed, span)
    # (Not compared as bytes: protobuf does not fix the order of map entries, e.g. properties.)
    assert seg_internal.ApplyEventsRequest.FromString(raw) == seg_internal.ApplyEventsRequest(
        app_id="app_1", events=events, span=span)


def test_profile_updates_frame_the_same_way():
    update = seg_internal.ProfileUpdate(update_id="u1", user_id="a", time_zone="Europe/Paris")
    raw = framing.request_bytes("app_1", [framing.frame_item(update.SerializeToString())])
    assert seg_internal.ApplyProfileUpdatesRequest.FromString(raw) == seg_internal.ApplyProfileUpdatesRequest(
        app_id="app_1", updates=[update])


def test_a_framed_run_splits_back_into_its_items():
    payloads = [b"", b"x", b"y" * 127, b"z" * 128, b"w" * 20000]
    assert framing.split_items(b"".join(framing.frame_item(p) for p in payloads)) == payloads
