"""`nudge simulate -f campaign.yaml --timeline user.yaml`: a dry run before launch.

Replays one user's scripted timeline (profile, events with times, pulls) through the rules
production runs, with a fixed clock and no service or database: segmentation's rule
evaluation (`services.segmentation.catalog`, `rule_evaluation`) for the user's segments, and
decision's triggers, reactions (exception events), judge (delay, window, quiet hours, caps,
audience, expiry), pull plan and variants for what is sent and shown. What this module adds
is only the bookkeeping the stores and delivery's inbox do in production: the user's
counters and profile, the pending sends, the inbox and the delivery history.

Every campaign of the files is taken as ACTIVE (it is a dry run before launch); its start
and end times still hold. Campaign ids are their keys, segment ids theirs. The timeline
format is `nudgetools.timeline`'s, described in the README ("Campaigns as files").

What the simulation leaves out: other users and replicas (no races), segmentation's lag
(the user's context always has the latest event), and delivery's rendering failures.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib import filters, templates
from nudgelib.protoconv import attribute_python, to_datetime, to_timestamp
from nudgetools.files import Document, DocumentError, Problem, load_documents, segment_references
from nudgetools.timeline import Step, Timeline, load_timeline
from services.decision import triggers
from services.decision.catalog import AppCatalog
from services.decision.judge import judge
from services.decision.model import Action, Delivered, NewPending, PendingSend, UserState
from services.decision.plan import plan_pull
from services.decision.reactions import react
from services.decision.variants import pick_content
from services.decision.windows import local_text, zone
from services.segmentation.catalog import Catalog
from services.segmentation.contexts import context_proto
from services.segmentation.model import Counter, Profile, SegmentDef

# A timeline that keeps waking itself (a segment that changes every day) stops here.
MAX_MOMENTS = 10_000
UTC = timezone.utc


# --- what happened -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """One line of the simulation's account: at `at`, what happened to `subject` (a
    campaign key, or the user's own step), and why."""

    at: datetime
    subject: str
    what: str  # event, pull, profile, segment, triggered, not-triggered, cancelled, held,
    #            released, shown, not-shown, dropped, expired, control, waiting
    detail: str = ""
    reason: str = ""


@dataclass
class _Send:
    id: str
    campaign_id: str
    trigger_index: int
    cause: str
    triggered_at: datetime
    due: datetime
    expires: datetime
    properties: str


@dataclass
class Simulation:
    """The state production keeps in its stores, here in memory."""

    catalog: AppCatalog
    segments: Catalog
    timeline: Timeline
    profile: Profile
    state: UserState = field(default_factory=UserState)
    pending: list[_Send] = field(default_factory=list)
    inbox: list[internal_pb.Decision] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    valid_until: datetime | None = None
    moments: list[Moment] = field(default_factory=list)
    events: int = 0

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.profile.time_zone, self.catalog.settings.default_time_zone)

    def say(self, at: datetime, subject: str, what: str, detail: str = "", reason: str = "") -> None:
        self.moments.append(Moment(at, subject, what, detail, reason))

    def context(self) -> common_pb2.UserContext:
        return context_proto(self.profile, self.members, self.valid_until)

    # ------------------------------------------------------------ segmentation's part

    def evaluate(self, now: datetime) -> list[str]:
        """The user's segments after a change; says which were entered and left, and returns
        the entered ones."""
        found = self.segments.evaluate(self.profile, now)
        entered = sorted(set(found.segment_ids) - set(self.members))
        for s in entered:
            self.say(now, s, "segment", "enters segment")
        for s in sorted(set(self.members) - set(found.segment_ids)):
            self.say(now, s, "segment", "leaves segment")
        self.members, self.valid_until = found.segment_ids, found.valid_until
        return entered

    def count(self, step: Step, properties: struct_pb2.Struct) -> None:
        p = self.profile
        p.known = True
        at = step.at
        for key in self.segments.counters_for(step.event, properties):
            c = p.counters.get(key)
            days = dict(c.days) if c else {}
            days[at.date()] = days.get(at.date(), 0) + 1
            p.counters[key] = Counter((c.total if c else 0) + 1, min(c.first_at, at) if c else at,
                                      max(c.last_at, at) if c else at, days)
        p.first_seen = min(p.first_seen, at) if p.first_seen else at
        p.last_seen = max(p.last_seen, at) if p.last_seen else at
        if step.platform:
            p.platforms = p.platforms | {step.platform}
        if step.app_version:
            p.app_version = step.app_version

    # ------------------------------------------------------------ decision's part

    def add(self, send: NewPending, now: datetime) -> None:
        """A send started (by an event or a segment entry), as the store keeps it."""
        self.pending.append(_Send(send.id, send.campaign_id, send.trigger_index, send.cause, send.triggered_at,
                                  send.due_at, send.expire_at, send.event_properties))
        trigger = self.catalog.by_id[send.campaign_id].campaign.triggers[send.trigger_index]
        delay = timedelta(seconds=trigger.delay.seconds)
        self.say(now, send.campaign_id, "triggered", f"send due at {local_text(send.due_at, self.tz)}"
                 + (f" (after its {_span(delay)} delay)" if delay else ""))

    def event(self, step: Step) -> None:
        self.events += 1
        now = step.at
        self.say(now, "event", "event", f"{step.event} {json.dumps(step.properties)}" if step.properties else step.event)
        properties = struct_pb2.Struct()
        properties.update(step.properties)
        self.count(step, properties)
        entered = self.evaluate(now)
        e = common_pb2.Event(event_id=f"sim-{self.events}", user_id=self.timeline.user_id, name=step.event,
                             properties=properties, occurred_time=to_timestamp(now), platform=step.platform,
                             app_version=step.app_version)
        reaction = react(self.catalog, [e], now)
        fired = {s.campaign_id for s in reaction.sends}
        for t in self.catalog.triggers:
            if t.event_name == step.event and t.campaign.id not in fired:
                if not t.runs_at(now):
                    self.say(now, t.campaign.id, "not-triggered", "the event is outside the campaign's schedule",
                             "SCHEDULE")
                elif not filters.match_all(t.filters, filters.plain_struct(properties)):
                    self.say(now, t.campaign.id, "not-triggered", "the event's properties do not pass the trigger's "
                             "filters", "TRIGGER_FILTERS")
        for c in reaction.cancels:
            for s in self.pending:
                if s.campaign_id == c.campaign_id and s.trigger_index == c.trigger_index and s.triggered_at <= c.at:
                    self.pending.remove(s)
                    self.say(now, s.campaign_id, "cancelled", f"the send triggered at "
                             f"{local_text(s.triggered_at, self.tz)} is cancelled by exception event {c.event_name}",
                             "EXCEPTION_EVENT")
        for send in reaction.sends:
            self.add(send, now)
        self.enter(entered, now)

    def enter(self, entered: list[str], now: datetime) -> None:
        for firing in triggers.fired_by_segment_entry(self.catalog.triggers, entered, now):
            segment = firing.campaign.triggers[firing.trigger_index].segment_entered_id
            self.add(triggers.new_pending(firing, self.timeline.user_id, f"segment:{segment}:{now.isoformat()}",
                                          now, "{}", now), now)

    def profile_update(self, step: Step) -> None:
        p = self.profile
        p.known = True  # segmentation knows a user from their first event or profile update
        changes = ", ".join(f"{k}={'(unset)' if v is None else json.dumps(attribute_python(v), default=str)}"
                            for k, v in (step.attributes or {}).items())
        for name, stored in (step.attributes or {}).items():
            if stored is None:
                p.attributes.pop(name, None)
                p.stored_attributes.pop(name, None)
            else:
                p.attributes[name], p.stored_attributes[name] = attribute_python(stored), stored
        p.time_zone = step.time_zone or p.time_zone
        p.locale = step.locale or p.locale
        extra = [f"time_zone={step.time_zone}"] * bool(step.time_zone) + [f"locale={step.locale}"] * bool(step.locale)
        self.say(step.at, "profile", "profile", ", ".join(x for x in [changes, *extra] if x))
        self.enter(self.evaluate(step.at), step.at)

    def release_due(self, now: datetime) -> None:
        """The releaser's round at `now`: each send due is judged (judge.py) and released,
        held, dropped or treated as control."""
        user = self.context()
        released = 0
        for s in sorted((s for s in self.pending if s.due <= now), key=lambda s: (s.due, s.id)):
            send = PendingSend(self.timeline.user_id, s.campaign_id, s.expires, s.due, s.cause, s.triggered_at)
            verdict = judge(send, self.catalog.by_id.get(s.campaign_id), self.catalog.settings, user, self.state, now)
            if verdict.action is Action.DEFER and verdict.until is not None:
                s.due = verdict.until
                self.say(now, s.campaign_id, "held", verdict.detail, verdict.reason)
                continue
            self.pending.remove(s)
            if verdict.action is Action.DROP:
                what = "expired" if verdict.reason == "EXPIRED" else "dropped"
                self.say(now, s.campaign_id, what, verdict.detail, verdict.reason)
                continue
            if verdict.new_arm:
                self.state.arms[s.campaign_id] = verdict.arm
            if verdict.action is Action.CONTROL:
                self.say(now, s.campaign_id, "control", verdict.detail + ": nothing is shown", verdict.reason)
                continue
            campaign = self.catalog.by_id[s.campaign_id].campaign
            variant = next(v for v in campaign.variants if v.id == verdict.arm)
            content = pick_content(variant, self.profile.locale, self.catalog.settings.default_locale)
            properties = struct_pb2.Struct()
            properties.update(json.loads(s.properties))
            self.inbox.append(internal_pb.Decision(
                message_id=s.id, campaign_id=campaign.id, campaign_version=campaign.version, variant_id=verdict.arm,
                content=content.content, locale=content.locale, expire_time=to_timestamp(s.expires),
                event_properties=properties))
            self.say(now, s.campaign_id, "released", f"to the inbox (variant {verdict.arm})")
            released += 1
        if self.timeline.stream and released:  # delivery offers what it enqueues to the open stream
            self.pull(now, self.timeline.client, len(self.inbox), pending_only=True)

    def pull(self, now: datetime, request: pb.RequestContext, limit: int, pending_only: bool = False) -> None:
        """A client asks (or, with `pending_only`, the user's stream is offered the inbox):
        decision's pull plan decides, as for FetchMessages and Subscribe."""
        for m in list(self.inbox):
            if to_datetime(m.expire_time) <= now:
                self.inbox.remove(m)
                self.say(now, m.campaign_id, "expired", "its time-to-live passed in the inbox", "EXPIRED")
        user = self.context()
        plan = plan_pull(self.catalog, user, request, self.state, now, limit, list(self.inbox), pending_only)
        for d in plan.dropped:
            m = next(m for m in self.inbox if m.message_id == d.message_id)
            self.inbox.remove(m)
            self.say(now, m.campaign_id, "dropped", "can no longer be shown",
                     internal_pb.DropReason.Name(d.reason).removeprefix("DROP_REASON_"))
        by_id = self.catalog.by_id
        for (message_id, campaign_id, variant, tags, counts), d in zip(plan.reservation.deliveries, plan.decisions):
            self.state.history.append(Delivered(campaign_id, tags, now, counts))
            self.inbox = [m for m in self.inbox if m.message_id != message_id]
            title = _title(d, user)
            how = "pushed on the stream" if pending_only else "shown on pull"
            self.say(now, campaign_id, "shown", f"{how} (variant {variant}){': ' + title if title else ''}")
        for campaign_id, arm in plan.reservation.arms:
            self.state.arms.setdefault(campaign_id, arm)
        for m in self.inbox:  # what waits in the inbox, and why: the judge's answer now
            rules = by_id.get(m.campaign_id)
            send = PendingSend(self.timeline.user_id, m.campaign_id, to_datetime(m.expire_time), arm=m.variant_id)
            v = judge(send, rules, self.catalog.settings, user, self.state, now, request)
            if v.action is Action.DEFER:
                until = f" until {local_text(v.until, self.tz)}" if v.until else ""
                self.say(now, m.campaign_id, "waiting", f"waits in the inbox{until}: {v.detail}", v.reason)
        if pending_only:
            return
        for v in plan.verdicts:
            if v.verdict == pb.VERDICT_CHOSEN or v.exclusion is None or v.exclusion.reason == "TRIGGERED_ONLY":
                continue
            if v.verdict == pb.VERDICT_CONTROL:
                self.say(now, v.campaign.id, "control", v.exclusion.detail + ": nothing is shown", v.exclusion.reason)
            else:
                self.say(now, v.campaign.id, "not-shown", v.exclusion.detail, v.exclusion.reason)

    # ------------------------------------------------------------ the clock

    def run(self) -> list[Moment]:
        steps = list(self.timeline.steps)
        until = self.timeline.until
        start = steps[0].at
        if self.profile.known:
            self.enter(self.evaluate(start), start)
        i = 0
        for _ in range(MAX_MOMENTS):
            timers = [s.due for s in self.pending] + ([self.valid_until] if self.valid_until else [])
            timer = min(timers, default=None)
            step = steps[i] if i < len(steps) else None
            if timer is not None and timer <= until and (step is None or timer <= step.at):
                if self.valid_until is not None and self.valid_until <= timer:
                    self.enter(self.evaluate(timer), timer)  # segmentation's sweeper
                self.release_due(timer)
            elif step is not None:
                i += 1
                if step.event:
                    self.event(step)
                elif step.pull is not None:
                    self.say(step.at, "pull", "pull", _describe(step.pull))
                    self.pull(step.at, step.pull, step.limit)
                else:
                    self.profile_update(step)
                self.release_due(step.at)
            else:
                break
        else:
            self.say(until, "simulate", "stopped", f"after {MAX_MOMENTS} moments")
        for s in self.pending:
            self.say(until, s.campaign_id, "waiting", f"still pending at the end, due at {local_text(s.due, self.tz)}")
        for m in self.inbox:
            self.say(until, m.campaign_id, "waiting", "still in the inbox at the end, never pulled")
        return self.moments


def _describe(r: pb.RequestContext) -> str:
    parts = [f"platform={common_pb2.Platform.Name(r.platform)}"] if r.platform else []
    parts += [f"{name}={getattr(r, name)}" for name in ("screen", "app_version", "locale") if getattr(r, name)]
    return " ".join(parts) or "(no client context)"


def _span(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    out = "".join(f"{n}{unit}" for n, unit in ((seconds // 86400, "d"), (seconds % 86400 // 3600, "h"),
                                               (seconds % 3600 // 60, "m"), (seconds % 60, "s")) if n)
    return out or "0s"


def _title(d: internal_pb.Decision, user: common_pb2.UserContext) -> str:
    """The message's title (or body) as the user would read it, rendered by the templates
    delivery uses."""
    try:
        content = templates.render(d.content, templates.variables(user, d.event_properties))
    except templates.RenderError as exc:
        return f"(template error: {exc})"
    text = content.title or content.body
    return f'"{text}"' if text else ""


# --- from documents ------------------------------------------------------------------------------


def simulation(docs: list[Document], timeline: Timeline) -> Simulation:
    """The documents (campaigns, the segments they name, app settings) ready to replay."""
    problems = []
    segment_keys = {d.key for d in docs if d.kind == "Segment"}
    for d in docs:
        for ref in segment_references(d):
            if ref.key not in segment_keys:
                origin = d.origin
                problems.append(Problem(origin.file if origin else "<document>", origin.line_of(ref.field) if origin else 0,
                                        ref.field, f"names segment {ref.key!r}: give its Segment document in -f too"))
    if problems:
        raise DocumentError(problems)
    campaigns = []
    for d in docs:
        if d.kind == "Campaign":
            c = pb.Campaign()
            c.CopyFrom(d.message)
            c.id, c.version, c.status = d.key, 1, pb.CAMPAIGN_STATUS_ACTIVE
            campaigns.append(c)
    settings = pb.AppSettings()
    settings.CopyFrom(next((d.message for d in docs if d.kind == "AppSettings"), pb.AppSettings()))
    settings.default_time_zone = settings.default_time_zone or "UTC"  # as UpdateAppSettings stores it
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    segments = Catalog.of("simulate", 1, [SegmentDef(d.key, n + 1, d.message.name, d.message.description,
                                                     d.message.rule, 1, epoch, epoch)
                                          for n, d in enumerate(x for x in docs if x.kind == "Segment")])
    # Unknown to segmentation until the first event or profile update, unless seen before.
    profile = Profile(timeline.user_id, known=timeline.last_seen is not None,
                      attributes={k: attribute_python(v) for k, v in timeline.attributes.items()},
                      stored_attributes=dict(timeline.attributes), time_zone=timeline.time_zone,
                      locale=timeline.locale, first_seen=timeline.last_seen, last_seen=timeline.last_seen,
                      platforms=frozenset(timeline.platforms), app_version=timeline.app_version)
    return Simulation(AppCatalog.of(campaigns, settings), segments, timeline, profile)


def simulate(docs: list[Document], timeline: Timeline) -> list[Moment]:
    return simulation(docs, timeline).run()


def render(moments: list[Moment], timeline: Timeline, docs: list[Document]) -> str:
    """The account as text: one line per moment in the user's local time, then a summary."""
    settings = next((d.message for d in docs if d.kind == "AppSettings"), pb.AppSettings())
    tz = zone(timeline.time_zone, settings.default_time_zone)
    drafts = [d.key for d in docs if d.kind == "Campaign" and d.message.status != pb.CAMPAIGN_STATUS_ACTIVE]
    lines = [f"user {timeline.user_id}, time zone {tz.key}, delivery by {'stream' if timeline.stream else 'pull'}; "
             f"until {local_text(timeline.until, tz)}"]
    if drafts:
        lines.append(f"taken as active for the simulation: {', '.join(drafts)}")
    for m in moments:
        when = local_text(m.at, tz)
        if m.subject in ("event", "pull", "profile"):
            lines.append(f"{when}  {m.subject} {m.detail}")
            continue
        reason = f" [{m.reason}]" if m.reason else ""
        lines.append(f"{when}    {m.subject}: {m.what}: {m.detail}{reason}")
    shown = [m for m in moments if m.what == "shown"]
    lines.append(f"received {len(shown)} message{'s' * (len(shown) != 1)}" + (": " if shown else "")
                 + ", ".join(f"{m.subject} at {local_text(m.at, tz)}" for m in shown))
    return "\n".join(lines) + "\n"


def main(campaign_files: list[str], timeline_file: str) -> int:
    """`nudge simulate`: 0 after printing the account; 2 for a bad file (each problem named)."""
    try:
        docs = load_documents(campaign_files)
        timeline = load_timeline(timeline_file)
        moments = simulate(docs, timeline)
    except DocumentError as exc:
        print(f"nudge simulate: bad input:\n{exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(moments, timeline, docs))
    return 0
