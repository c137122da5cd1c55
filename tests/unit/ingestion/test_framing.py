"""Protobuf framing: payloads concatenate into requests, and a user can be scrubbed out."""

from __future__ import annotations

import pytest

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from services.ingestion import framing


def test_framed_payloads_concatenate_into_a_request():
    events = [common_pb2.Event(event_id=f"e{i}", user_id="u", name="x" * (i * 70)) for i in range(4)]
    framed = [framing.frame_item(e.SerializeToString()) for e in events]
    raw = framing.request_bytes("app_1", framed[:2]) + b"".join(framed[2:])
    for message in (seg_internal.ApplyEventsRequest, decision_internal.ApplyEventsRequest):
        parsed = message.FromString(raw)
        assert parsed.app_id == "app_1" and list(parsed.events) == events


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 40000])
def test_varint_matches_protobuf(n):
    request = seg_internal.ApplyEventsRequest(events=[common_pb2.Event(event_id="x" * n)])
    event_bytes = request.events[0].SerializeToString()
    assert framing.frame_item(event_bytes) == request.SerializeToString()


def test_scrubbing_a_user_out_of_a_payload():
    events = [common_pb2.Event(event_id=f"e{i}", user_id=u) for i, u in enumerate(["a", "b", "a", "c"])]
    payload = b"".join(framing.frame_item(e.SerializeToString()) for e in events)
    kept, remaining = framing.without_user("event", payload, "a")
    assert remaining == 2
    assert [e.event_id for e in seg_internal.ApplyEventsRequest.FromString(kept).events] == ["e1", "e3"]
    update = seg_internal.ProfileUpdate(update_id="x", user_id="a")
    assert framing.without_user("profile", framing.frame_item(update.SerializeToString()), "a") == (b"", 0)
