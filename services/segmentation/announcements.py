"""What segmentation tells decision (DecisionInternalService.ApplyUserChanges), as outbox
rows written in the transaction of the change, and how queued rows become requests.

- After every change applied to a user (events, profile updates) and every membership change
  by the passage of time: a UserChange with a unique change_id, the user's full context after
  the change, and the segments entered and exited (the diff against the stored memberships).
- After any segment create, update or delete: a request with segments_changed.

Rows of one user share a shard, so decision receives a user's changes in commit order. They
are sent at least once: a retry after a failure repeats the same change_id.
"""

from __future__ import annotations

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_grpc
from nudgelib.clients import Peer
from nudgelib.ordered_outbox import shard_of

CHANGE = "change"
SEGMENTS = "segments"


def change_row(app_id: str, user_id: str, change_id: str, entered: list[str], exited: list[str],
               context: common_pb2.UserContext, shards: int) -> tuple[int, str, str, str, bytes]:
    change = decision_pb.UserChange(user_id=user_id, entered_segment_ids=entered, exited_segment_ids=exited,
                                    context=context, change_id=change_id)
    return shard_of(f"{app_id}/{user_id}", shards), app_id, user_id, CHANGE, change.SerializeToString()


def segments_changed_row(app_id: str, shards: int) -> tuple[int, str, str, str, bytes]:
    return shard_of(f"{app_id}/", shards), app_id, "", SEGMENTS, b""


class DecisionSender:
    """Sends a run of outbox rows as one ApplyUserChanges request; raises unless decision
    took it (the rows then stay and are retried)."""

    # Short: an erasure waits for the rows being sent (so nothing of an erased user is sent
    # after it), at most this long.
    def __init__(self, decision: Peer, timeout: float = 5.0) -> None:
        self._peer = decision
        self._stub = decision_grpc.DecisionInternalServiceStub(decision.channel)
        self._timeout = timeout

    async def __call__(self, app_id: str, kind: str, payloads: list[bytes]) -> None:
        if kind == SEGMENTS:
            request = decision_pb.ApplyUserChangesRequest(app_id=app_id, segments_changed=True)
        else:
            request = decision_pb.ApplyUserChangesRequest(
                app_id=app_id, changes=[decision_pb.UserChange.FromString(p) for p in payloads])
        await self._peer.call(self._stub.ApplyUserChanges, request, timeout=self._timeout)
