"""The verdict on one pending triggered send: release it, defer it (until when, and why),
drop it (why), or treat it as control. Pure.

The releaser calls it when a send comes due, and the pull calls it for a released message a
client may now take, so the two paths cannot disagree. In order:
- expired (its time-to-live passed): dropped;
- its campaign is no longer active: dropped;
- its delay has not passed: deferred to its due time (DELAY);
- triggered by an event that may be what puts the user in the campaign's audience, judged
  on a context that does not have that event yet: deferred a moment (WAITING_FOR_SEGMENTATION);
- stopped, ended or no longer in the audience: dropped;
- the asking client's platform, app version or screen does not fit: it waits for one that
  does (deferred with no time);
- before the start, outside the send window, in quiet hours or a cap is full: deferred to when
  that ends — or dropped when that is never, after the send expires, or (outside the window)
  the campaign says `drop_outside_window`;
- the user's arm is the control group: control (nothing is shown; the exposure is recorded);
- else released, in the user's arm.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_datetime
from services.decision.eligibility import PERMANENT, Compiled, exclusion
from services.decision.model import Action, Judgement, PendingSend, UserState
from services.decision.selection import timing_exclusion
from services.decision.variants import CONTROL, arm_for
from services.decision.windows import zone

# How soon a send waiting for segmentation to apply its trigger event is looked at again.
SEGMENTATION_RECHECK = timedelta(milliseconds=20)
WAITING_FOR_SEGMENTATION = "WAITING_FOR_SEGMENTATION"
# Exclusions about the asking client: another client may fit, so the message waits.
CLIENT_RULES = frozenset({"PLATFORM", "APP_VERSION", "SCREEN"})


def awaits_segmentation(rules: Compiled, send: PendingSend, user: common_pb2.UserContext) -> bool:
    """Whether the send's trigger event may change its audience and `user` does not have it
    yet. Ingestion hands an event to segmentation and to decision at the same time; segmentation's
    last seen time is the latest event it applied."""
    if not (rules.include or rules.exclude) or not send.cause.startswith("event:") or send.triggered_at is None:
        return False
    return not user.known or to_datetime(user.last_seen_time) < send.triggered_at


def judge(send: PendingSend, rules: Compiled | None, settings: pb.AppSettings, user: common_pb2.UserContext,
          state: UserState, now: datetime, request: pb.RequestContext | None = None) -> Judgement:
    expires = send.expires
    if expires is not None and now >= expires:
        return Judgement(Action.DROP, "EXPIRED", detail="its time-to-live passed")
    if rules is None:
        return Judgement(Action.DROP, "NOT_ACTIVE", detail="the campaign is no longer active")
    if send.due is not None and now < send.due:
        return Judgement(Action.DEFER, "DELAY", send.due, detail="waiting for the trigger's delay")
    if awaits_segmentation(rules, send, user):
        return Judgement(Action.DEFER, WAITING_FOR_SEGMENTATION, now + SEGMENTATION_RECHECK,
                         detail="waiting for segmentation to apply the trigger event")
    tz = zone(user.time_zone, settings.default_time_zone)
    why = exclusion(rules, user, request, now, on_request=False, tz=tz) or timing_exclusion(
        rules, settings, user, state.history, now)
    if why is not None:
        if why.reason in PERMANENT:
            return Judgement(Action.DROP, why.reason, detail=why.detail, rule=why.rule)
        if why.reason in CLIENT_RULES:
            return Judgement(Action.DEFER, why.reason, None, detail=why.detail)
        dropped_outside = why.reason == "OUTSIDE_WINDOW" and rules.window is not None and rules.window.drop_outside_window
        if dropped_outside or why.until is None or (expires is not None and why.until >= expires):
            return Judgement(Action.DROP, why.reason, detail=why.detail, rule=why.rule)
        return Judgement(Action.DEFER, why.reason, why.until, detail=why.detail, rule=why.rule)
    if send.arm is not None:
        arm, new = send.arm, False
    else:
        arm, new = arm_for(rules.campaign, send.user_id, state)
    if arm == CONTROL:
        return Judgement(Action.CONTROL, "CONTROL_GROUP", arm=CONTROL, new_arm=new,
                         detail="the user is in the control group")
    return Judgement(Action.RELEASE, arm=arm, new_arm=new)
