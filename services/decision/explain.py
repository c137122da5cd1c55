"""What Explain and ListPendingSends say about a user's triggered sends. Pure: the decider
reads the rows and the user, this turns them into `PendingSend` records.

A pending send is judged as the releaser would judge it right now (`judge.py` is the one
source of verdicts): waiting for its delay, held by a window, quiet hours or a cap (until
when, which rule), waiting for segmentation, due, or about to be dropped. A settled one says
how it ended: released, control, cancelled (by which exception event), dropped or expired
(why), or failed (the error). "Recent" settled sends are those settled in the last
`RECENT`; settled rows are deleted NUDGE_DECISION_SETTLED_SEND_RETENTION_DAYS (30) after they
settled, so a retention under 7 days shortens what this can show.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import set_timestamp
from services.decision import windows
from services.decision.eligibility import Compiled
from services.decision.judge import WAITING_FOR_SEGMENTATION, judge
from services.decision.model import Action, PendingSend, StoredSend, UserState

# Settled sends older than this are not shown.
RECENT = timedelta(days=7)
# Explain shows at most this many pending, and this many settled, sends per campaign.
PER_CAMPAIGN = 20

S = pb.PendingSendState
_SETTLED = {
    "released": S.PENDING_SEND_STATE_RELEASED,
    "control": S.PENDING_SEND_STATE_CONTROL,
    "cancelled": S.PENDING_SEND_STATE_CANCELLED,
    "dropped": S.PENDING_SEND_STATE_DROPPED,
    "expired": S.PENDING_SEND_STATE_EXPIRED,
    "failed": S.PENDING_SEND_STATE_FAILED,
}
_SETTLED_TEXT = {
    "released": "released to the inbox",
    "control": "not shown: the user is in the control group",
    "dropped": "dropped",
    "expired": "expired: its time-to-live passed",
    "failed": "failed",
}


def explain_sends(sends: list[StoredSend], active: Mapping[str, Compiled], names: Mapping[str, str],
                  settings: pb.AppSettings, user: common_pb2.UserContext, state: UserState,
                  now: datetime) -> list[pb.PendingSend]:
    """One record per row, in the rows' order. `active` holds the app's active campaigns
    (a send of any other is dropped when judged), `names` every campaign's name."""
    tz = windows.zone(user.time_zone, settings.default_time_zone)
    return [explain_send(s, active.get(s.campaign_id), names.get(s.campaign_id, ""), settings, user, state, now, tz)
            for s in sends]


def explain_send(send: StoredSend, rules: Compiled | None, name: str, settings: pb.AppSettings,
                 user: common_pb2.UserContext, state: UserState, now: datetime, tz) -> pb.PendingSend:
    out = pb.PendingSend(id=send.id, campaign_id=send.campaign_id, campaign_name=name,
                         trigger_index=send.trigger_index, cause=send.cause)
    set_timestamp(out.trigger_time, send.triggered_at)
    set_timestamp(out.due_time, send.due_at)
    set_timestamp(out.expire_time, send.expire_at)
    if send.status != "pending":
        _settled(out, send, tz)
        return out
    # A send the releaser deferred has passed its delay (it is claimed only once due); its
    # due_at is now the end of the hold, which the judge must not read as a delay.
    pending = PendingSend(send.user_id, send.campaign_id, send.expire_at,
                          send.due_at if not send.outcome else None, send.cause, send.triggered_at)
    verdict = judge(pending, rules, settings, user, state, now)
    out.reason, out.rule = verdict.reason, verdict.rule
    if verdict.action is Action.DEFER:
        set_timestamp(out.until_time, verdict.until)
        if verdict.reason == "DELAY":
            out.state = S.PENDING_SEND_STATE_WAITING_FOR_DELAY
            out.detail = f"waiting for the trigger's delay until {windows.local_text(verdict.until, tz)}"
        elif verdict.reason == WAITING_FOR_SEGMENTATION:
            out.state = S.PENDING_SEND_STATE_WAITING_FOR_SEGMENTATION
            out.detail = verdict.detail
        else:
            out.state = S.PENDING_SEND_STATE_HELD
            out.detail = f"held: {verdict.detail}"
    elif verdict.action is Action.DROP:
        out.state = S.PENDING_SEND_STATE_WILL_DROP
        out.detail = f"will be dropped when next judged ({verdict.reason}): {verdict.detail}"
    else:
        out.reason = ""
        out.state = S.PENDING_SEND_STATE_DUE
        out.detail = "due: released on the releaser's next round"
    return out


def _settled(out: pb.PendingSend, send: StoredSend, tz) -> None:
    out.state = _SETTLED.get(send.status, S.PENDING_SEND_STATE_UNSPECIFIED)
    set_timestamp(out.finish_time, send.updated_at)
    at = windows.local_text(send.updated_at, tz)
    if send.status == "cancelled":
        out.reason = send.outcome
        out.cancelled_by_event_name = send.cancelled_by_event_name
        out.cancelled_by_event_id = send.cancelled_by_event_id
        by = (f"exception event {send.cancelled_by_event_name} ({send.cancelled_by_event_id})"
              if send.cancelled_by_event_name else "an exception event")
        out.detail = f"cancelled by {by} at {at}"
        return
    if send.status in ("dropped", "expired", "failed"):
        out.reason = send.outcome
    text = _SETTLED_TEXT.get(send.status, send.status)
    reason = f" ({send.outcome})" if send.status in ("dropped", "failed") and send.outcome else ""
    out.detail = f"{text}{reason} at {at}"
