"""The plan of one pull: which pending triggered messages and on-request campaigns are handed
out, which control exposures are new, which pending messages can never go (and why). Pure.

Pending triggered messages and on-request campaigns are taken together in rank order (the
highest priority first, ties to the smaller campaign id), each handed out message counting
toward the caps of those after it, until the limit is reached: a pending message of a
low-priority campaign waits behind a higher-priority campaign's message, in its inbox, for a
later pull (until it expires). The plan is made once from cached state, and — if it hands anything out or
records anything — made again under the user's lock from fresh state; only that second plan
is written and returned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_datetime, to_timedelta, to_timestamp
from services.decision.catalog import AppCatalog
from services.decision.drops import EXPIRED, drop_reason
from services.decision.eligibility import rank_key
from services.decision.judge import judge
from services.decision.model import DEFAULT_TTL, Action, PendingSend, Reservation, UserState, Verdict
from services.decision.selection import Selection, delivered
from services.decision.variants import in_locale, pick_content


@dataclass
class PullPlan:
    decisions: list[internal_pb.Decision] = field(default_factory=list)
    controls: list[internal_pb.Decision] = field(default_factory=list)
    dropped: list[internal_pb.DroppedMessage] = field(default_factory=list)
    reservation: Reservation = field(default_factory=lambda: Reservation([], []))
    # The selection's verdict on every active campaign, with why it was not chosen (triggered
    # ones are TRIGGERED_ONLY); what `nudge simulate` prints. Empty for a pending_only plan.
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return bool(self.reservation.deliveries or self.reservation.arms)


def on_request_decision(campaign: pb.Campaign, variant_id: str, locales: tuple[str, ...],
                        now: datetime) -> internal_pb.Decision:
    variant = next(v for v in campaign.variants if v.id == variant_id)
    content = pick_content(variant, *locales)
    ttl = to_timedelta(campaign.message_ttl) or DEFAULT_TTL
    return internal_pb.Decision(
        message_id=f"msg_{uuid.uuid4().hex}", campaign_id=campaign.id, campaign_version=campaign.version,
        variant_id=variant.id, content=content.content, locale=content.locale,
        expire_time=to_timestamp(now + ttl), conversion_events=campaign.conversion.event_names,
        conversion_deadline=campaign.conversion.deadline)


def plan_pull(catalog: AppCatalog, user: common_pb2.UserContext, request: pb.RequestContext,
              state: UserState, now: datetime, limit: int,
              pending: list[internal_pb.Decision], pending_only: bool = False) -> PullPlan:
    plan = PullPlan()
    by_id = catalog.by_id
    deliveries, arms = [], []
    selection = Selection(catalog.settings, user, request, state, now, limit)

    def rank(p: internal_pb.Decision):
        c = by_id.get(p.campaign_id)
        return rank_key(c.campaign) if c else (0, "")

    locales = (request.locale, user.locale, catalog.settings.default_locale)

    def offer(p: internal_pb.Decision) -> None:
        """A pending triggered message, at its campaign's rank: handed out if the judge
        releases it and the limit is not reached; dropped if it can never go."""
        rules = by_id.get(p.campaign_id)
        send = PendingSend(user.user_id, p.campaign_id, to_datetime(p.expire_time) if p.HasField("expire_time") else None,
                           arm=p.variant_id)
        verdict = judge(send, rules, catalog.settings, user, UserState(selection.history, state.arms), now, request)
        if verdict.action is Action.DROP:
            # An expired one is left as it is: delivery counts it as expired, not dropped.
            if verdict.reason != EXPIRED:
                plan.dropped.append(internal_pb.DroppedMessage(message_id=p.message_id,
                                                               reason=drop_reason(verdict.reason)))
            return
        if verdict.action is not Action.RELEASE or selection.full:
            return
        campaign = rules.campaign
        plan.decisions.append(in_locale(p, campaign, locales))
        record = delivered(campaign, now)
        selection.took(record)
        deliveries.append((p.message_id, campaign.id, p.variant_id, record.tags, record.counts_toward_app_caps))
        if campaign.id not in state.arms:
            arms.append((campaign.id, p.variant_id))

    waiting = sorted(pending, key=rank)
    for rules in () if pending_only else catalog.compiled:
        # The pending messages of campaigns ranked above this one go first.
        while waiting and rank(waiting[0]) <= rank_key(rules.campaign):
            offer(waiting.pop(0))
        v = selection.verdict(rules)
        plan.verdicts.append(v)
        if v.verdict == pb.VERDICT_CHOSEN:
            decision = on_request_decision(v.campaign, v.arm, locales, now)
            plan.decisions.append(decision)
            record = delivered(v.campaign, now)
            deliveries.append((decision.message_id, v.campaign.id, v.arm, record.tags,
                               record.counts_toward_app_caps))
            if v.new_arm:
                arms.append((v.campaign.id, v.arm))
        elif v.verdict == pb.VERDICT_CONTROL and v.new_arm:
            arms.append((v.campaign.id, v.arm))
            plan.controls.append(internal_pb.Decision(
                message_id=f"ctl_{uuid.uuid4().hex}", campaign_id=v.campaign.id,
                campaign_version=v.campaign.version, variant_id="", expire_time=to_timestamp(now),
                conversion_events=v.campaign.conversion.event_names,
                conversion_deadline=v.campaign.conversion.deadline))
    for p in waiting:
        offer(p)
    plan.reservation = Reservation(deliveries, arms)
    return plan
