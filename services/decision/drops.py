"""Why a send that can never go was dropped, as delivery's statistics count it: the judge's
reason (judge.py) folded into one DropReason. Pure.

Expiry is not a drop: a send whose time-to-live passed is counted as expired.
"""

from __future__ import annotations

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb

EXPIRED = "EXPIRED"

_BY_JUDGE_REASON = {
    "NOT_ACTIVE": internal_pb.DROP_REASON_CAMPAIGN_NOT_RUNNING,
    "AFTER_END": internal_pb.DROP_REASON_CAMPAIGN_NOT_RUNNING,
    "BEFORE_START": internal_pb.DROP_REASON_CAMPAIGN_NOT_RUNNING,
    "NOT_IN_AUDIENCE": internal_pb.DROP_REASON_NOT_IN_AUDIENCE,
    "OUTSIDE_WINDOW": internal_pb.DROP_REASON_OUTSIDE_WINDOW,
    "QUIET_HOURS": internal_pb.DROP_REASON_QUIET_HOURS,
    "CAPPED": internal_pb.DROP_REASON_CAPPED,
}


def drop_reason(judge_reason: str) -> int:
    """The DropReason of a judge's DROP (never UNSPECIFIED: a reason the table does not name
    is OTHER, so every drop is counted under exactly one reason)."""
    return _BY_JUDGE_REASON.get(judge_reason, internal_pb.DROP_REASON_OTHER)
