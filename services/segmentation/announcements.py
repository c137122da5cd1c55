"""What segmentation tells decision (DecisionInternalService.ApplyUserChanges), as outbox
rows written in the transaction of the change, and how queued rows become requests.

- After every change applied to a user (events, profile updates) and every membership change
  by the passage of time: a UserChange with a unique change_id, the user's full context after
  the change, and the segments entered and exited (the diff against the stored memberships).
- After any segment create, update or delete: a request with segments_changed.
- After events created users who entered no segment: one item naming them all
  (created_user_ids), so that decision drops the contexts it kept of them as unknown.

Rows of one user share a lane of segmentation's log (nudgelib.eventlog), so decision receives
a user's changes in commit order. They are sent at least once: a retry after a failure
repeats the same change_id, and decision starts a segment-entry send once per change_id.
"""

from __future__ import annotations

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudgelib.clients import Peer
from nudgelib.eventlog.dispatcher import LogSpec, Run, Target
from nudgelib.eventlog.framing import request_bytes, split_items
from nudgelib.eventlog.lanes import LANES, lane_of

CHANGE, SEGMENTS, CREATED = 0, 1, 2

# Lane claims are (_LANE_LOCK + consumer index, lane); the writers' gate is (_GATE, 0).
_LANE_LOCK = 0x53470000
_GATE = 0x53470100

LOG = LogSpec(source="segmentation", table="outbox", time_column="created_at", lanes=LANES, gate=(_GATE, 0),
              lock_class=_LANE_LOCK, kinds={CHANGE: "change", SEGMENTS: "segments", CREATED: "created"}, consumers=("decision",),
              delete_taken=True, traces="log_traces")


def change_row(app_id: str, user_id: str, change_id: str, entered: list[str], exited: list[str],
               context: common_pb2.UserContext) -> tuple[int, str, str, int, bytes]:
    change = decision_pb.UserChange(user_id=user_id, entered_segment_ids=entered, exited_segment_ids=exited,
                                    context=context, change_id=change_id)
    return lane_of(app_id, user_id), app_id, user_id, CHANGE, change.SerializeToString()


def segments_changed_row(app_id: str) -> tuple[int, str, str, int, bytes]:
    return lane_of(app_id, ""), app_id, "", SEGMENTS, b""


def created_row(app_id: str, user_ids: list[str]) -> tuple[int, str, str, int, bytes]:
    """On the app's lane, like a rules change: its order against the users' own changes does
    not matter, since all it makes decision do is drop what it holds of them. The payload is
    the request's field 4 records, so the items of a run join into one request as they are."""
    payload = decision_pb.ApplyUserChangesRequest(created_user_ids=user_ids).SerializeToString()
    return lane_of(app_id, ""), app_id, "", CREATED, payload


class DecisionSender:
    """Sends runs of the log's items (one app, one kind) as one ApplyUserChanges request, as raw
    bytes; raises unless decision took it (the items then stay and are retried)."""

    # Short: an erasure waits for the rows being sent (so nothing of an erased user is sent
    # after it), at most this long.
    def __init__(self, decision: Peer, timeout: float = 5.0) -> None:
        self._peer = decision
        self._apply = decision.channel.unary_unary(
            "/nudge.decision.v1.DecisionInternalService/ApplyUserChanges", request_serializer=None,
            response_deserializer=decision_pb.ApplyUserChangesResponse.FromString)
        self._timeout = timeout

    async def __call__(self, app_id: str, kind: int, runs: list[Run]) -> None:
        if kind == SEGMENTS:
            request = decision_pb.ApplyUserChangesRequest(app_id=app_id, segments_changed=True).SerializeToString()
        elif kind == CREATED:  # each item is field 4 records already: unframed, they join
            request = request_bytes(app_id, [item for r in runs for item in split_items(r.framed)])
        else:  # the changes are field 2, framed as the reader read them
            request = request_bytes(app_id, [r.framed for r in runs])
        await self._peer.call(self._apply, request, timeout=self._timeout)

    def target(self) -> Target:
        return Target("decision", (CHANGE, SEGMENTS, CREATED), self, self._peer.ready)
