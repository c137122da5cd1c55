"""Each judge reason for a drop counts under one DropReason; none is left unspecified."""

from __future__ import annotations

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from services.decision.drops import drop_reason


def test_each_judge_reason_has_one_drop_reason():
    assert drop_reason("NOT_ACTIVE") == drop_reason("AFTER_END") == internal_pb.DROP_REASON_CAMPAIGN_NOT_RUNNING
    assert drop_reason("NOT_IN_AUDIENCE") == internal_pb.DROP_REASON_NOT_IN_AUDIENCE
    assert drop_reason("OUTSIDE_WINDOW") == internal_pb.DROP_REASON_OUTSIDE_WINDOW
    assert drop_reason("QUIET_HOURS") == internal_pb.DROP_REASON_QUIET_HOURS
    assert drop_reason("CAPPED") == internal_pb.DROP_REASON_CAPPED
    # A reason added to the judge later is still counted.
    assert drop_reason("SOMETHING_NEW") == internal_pb.DROP_REASON_OTHER
