"""Short builders of rules for the segmentation unit tests."""

from __future__ import annotations

from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_service_pb2 as pb


def days(n: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=n * 86400)


def ev(name, op, count=0, window=None, d=0) -> pb.Rule:
    c = pb.EventCondition(name=name, operator=op, count=count, days=d)
    if window is not None:
        c.window.CopyFrom(days(window))
    return pb.Rule(event=c)


def attr(name, op, **value) -> pb.Rule:
    return pb.Rule(attribute=pb.AttributeCondition(name=name, operator=op,
                                                   value=common_pb2.AttributeValue(**value)))


def member(segment_id: str, negate: bool = False) -> pb.Rule:
    return pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=segment_id, negate=negate))

