"""Decision's I/O around the pure rules: the pull path, Explain, and what events and
segmentation's announcements do to pending triggered sends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import asyncpg
import structlog

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib import user_notices
from nudgelib.clock import Clock
from nudgelib.eventlog import positions
from nudgelib.protoconv import set_timestamp
from nudgelib.tracing import annotate_user
from services.decision import explain, store, triggers
from services.decision.caches import CONTEXTS_CHANNEL, CampaignCatalog, UserContexts, UserStates
from services.decision.catalog import AppCatalog
from services.decision.eligibility import compile_campaign, rank_key
from services.decision.model import UserState
from services.decision.plan import plan_pull
from services.decision.reactions import react
from services.decision.reservations import ReservationBatch
from services.decision.selection import select
from services.decision.variants import live_arms, without_gone_arms

log = structlog.get_logger(__name__)


def current_arms(catalog: AppCatalog, state: UserState) -> UserState:
    """The state a pull plans with: without the arms their campaign no longer has, so the
    plan records the arm it gives instead (store.reserve_many replaces the gone one)."""
    return without_gone_arms(state, lambda campaign_id: (c.campaign if (c := catalog.by_id.get(campaign_id))
                                                         else None))


class Decider:
    def __init__(self, pool: asyncpg.Pool, catalog: CampaignCatalog, contexts: UserContexts,
                 states: UserStates, clock: Clock, on_due: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.catalog = catalog
        self.contexts = contexts
        self.states = states
        self.clock = clock
        # Called when a triggered send is due now, so the releaser need not wait for its poll.
        self.on_due = on_due

    # ------------------------------------------------------------ the pull path

    def batch(self, pulls: int) -> ReservationBatch:
        """The reservations of `pulls` pulls decided together (a DecideBatch): written in one
        transaction (services.decision.reservations)."""
        return ReservationBatch(self.pool, pulls)

    async def decide(self, app_id: str, user_id: str, request: pb.RequestContext, limit: int,
                     pending: list[internal_pb.Decision], pending_only: bool = False,
                     batch: ReservationBatch | None = None) -> internal_pb.DecideResponse:
        """One pull; with `batch`, one of the batch's pulls (a single Decide is a batch of one)."""
        batch = batch or self.batch(1)
        try:
            user = await self.contexts.get(app_id, user_id)
            catalog = await self.catalog.get(app_id)
            now = self.clock.now()
            plan = plan_pull(catalog, user, request, current_arms(catalog, await self.states.get(app_id, user_id)),
                             now, limit, pending, pending_only)
        except BaseException:
            batch.skip()  # the batch's other pulls do not wait for this one
            raise
        if not plan.writes:
            batch.skip()
        else:
            # Plan again under the user's lock from fresh state, and write that plan, in the
            # batch's one transaction.
            plan, fresh = await batch.reserve(store.Reserve(
                app_id, user_id, now,
                lambda state: ((p := plan_pull(catalog, user, request, current_arms(catalog, state), now, limit,
                                               pending, pending_only)).reservation, p),
                live=lambda campaign_id: live_arms(c.campaign) if (c := catalog.by_id.get(campaign_id)) else None))
            self.states.put(app_id, user_id, fresh)
        annotate_user(app_id, user_id, {"nudge.campaigns.active": len(catalog.campaigns),
                                        "nudge.decisions": len(plan.decisions), "nudge.dropped": len(plan.dropped),
                                        "nudge.control_exposures": len(plan.controls)})
        return internal_pb.DecideResponse(decisions=plan.decisions, user=user, control_exposures=plan.controls,
                                          dropped=plan.dropped)

    async def release_reservations(self, app_id: str, user_id: str, message_ids: list[str]) -> int:
        released = await store.release_reservations(self.pool, app_id, user_id, message_ids)
        # This replica at once; the others through the notification.
        self.states.forget(app_id, user_id)
        return released

    def on_states_notify(self, payload: str | None) -> None:
        if payload is None:  # a notification may have been missed
            self.states.clear()
            return
        self.states.forget(*store.parse_state_key(payload))

    async def explain(self, app_id: str, user_id: str, request: pb.RequestContext) -> pb.ExplainDecisionResponse:
        user = await self.contexts.get(app_id, user_id, fresh=True)
        catalog = await self.catalog.get(app_id)
        now = self.clock.now()
        state = await store.load_state(self.pool, app_id, user_id)
        everything = [compile_campaign(c) for c in
                      sorted(await store.list_campaigns(self.pool, app_id, "", 100_000, 0), key=rank_key)]
        # Every campaign's sends in one query.
        rows = await store.sends_for_explain(self.pool, app_id, user_id, now - explain.RECENT, explain.PER_CAMPAIGN)
        sends: dict[str, list[pb.PendingSend]] = {}
        for send in explain.explain_sends(rows, catalog.by_id, {c.id: c.campaign.name for c in everything},
                                          catalog.settings, user, state, now):
            sends.setdefault(send.campaign_id, []).append(send)
        out = pb.ExplainDecisionResponse(user=user)
        for v in select(everything, catalog.settings, user, request, state, now, 1):
            item = out.campaigns.add(campaign_id=v.campaign.id, campaign_name=v.campaign.name, verdict=v.verdict,
                                     pending_sends=sends.get(v.campaign.id, ()))
            if v.exclusion is not None:
                item.reason, item.detail, item.rule = v.exclusion.reason, v.exclusion.detail, v.exclusion.rule
                set_timestamp(item.until_time, v.exclusion.until)
        return out

    async def list_pending_sends(self, app_id: str, user_id: str, after: tuple[datetime, str] | None,
                                 limit: int) -> list[pb.PendingSend]:
        """One page of the user's pending and recently settled sends, judged as Explain does."""
        now = self.clock.now()
        rows = await store.sends_page(self.pool, app_id, user_id, now - explain.RECENT, after, limit)
        if not rows:
            return []
        catalog = await self.catalog.get(app_id)
        user, state = await asyncio.gather(self.contexts.get(app_id, user_id, fresh=True),
                                           store.load_state(self.pool, app_id, user_id))
        names = await store.campaign_names(self.pool, app_id, list({r.campaign_id for r in rows}))
        return explain.explain_sends(rows, catalog.by_id, names, catalog.settings, user, state, now)

    # ------------------------------------------------------------ triggers

    async def apply_events(self, app_id: str, events: list[common_pb2.Event],
                           span: common_pb2.LogSpan = common_pb2.LogSpan()) -> int:
        catalog = await self.catalog.get(app_id)
        # Most events fire and cancel nothing: they write nothing, not even their position.
        kept = [i for i, e in enumerate(events) if e.name in catalog.reactive_events]
        if not kept:
            return 0
        events, span = [events[i] for i in kept], positions.subspan(span, kept)
        now = self.clock.now()
        # A send due at once is released right after this commit, and its release reads the
        # user's state: loaded meanwhile, it is ready when the release starts. (Not the
        # context: segmentation is applying the same event now, and the release needs a
        # context that has it.)
        soon = [e.user_id for e in events if e.name in catalog.immediate_events]
        warming = asyncio.ensure_future(self.warm(app_id, soon, contexts=False)) if soon else None
        try:
            applied, added = await store.apply_events(self.pool, app_id, events, span,
                                                      lambda fresh: react(catalog, fresh, now))
        finally:
            if warming is not None:
                await warming
        if any(p.due_at <= now for p in added):
            self.on_due()
        return applied

    async def warm(self, app_id: str, user_ids: list[str], contexts: bool = True) -> None:
        """Brings the users' states (and contexts) into the caches, together: the states
        are one query, and segmentation answers the context reads as one coalesced query. A
        failure is left to whoever needs them next, which asks again and reports it."""
        users = list(dict.fromkeys(user_ids))
        results = await asyncio.gather(self.states.load(app_id, users),
                                       *(self.contexts.get(app_id, u) for u in users if contexts),
                                       return_exceptions=True)
        failed = next((r for r in results if isinstance(r, Exception)), None)
        if failed is not None:
            log.debug("warm_failed", app_id=app_id, users=len(users), error=str(failed))

    async def apply_user_changes(self, request: internal_pb.ApplyUserChangesRequest) -> None:
        app_id = request.app_id
        if request.segments_changed:
            self.contexts.segments_changed(app_id)
        catalog = await self.catalog.get(app_id)
        now = self.clock.now()
        sends = []
        for change in request.changes:
            if change.HasField("context"):
                self.contexts.put(app_id, change.context)
            if not change.entered_segment_ids:
                continue
            key = change.change_id or f"{change.context.last_seen_time.seconds}.{change.context.last_seen_time.nanos}"
            for firing in triggers.fired_by_segment_entry(catalog.triggers, change.entered_segment_ids, now):
                segment = firing.campaign.triggers[firing.trigger_index].segment_entered_id
                sends.append(triggers.new_pending(firing, change.user_id, f"segment:{segment}:{key}", now, "{}", now))
        for user_id in request.created_user_ids:  # known now: what was kept of them is stale
            self.contexts.forget(app_id, user_id)
        added = await store.add_pending(self.pool, app_id, sends)
        # The other replicas drop what they hold of these users (or of the app's rules):
        # before this returns, so that once segmentation moves on, no replica keeps the old.
        await user_notices.notify(self.pool, CONTEXTS_CHANNEL, app_id,
                                  [c.user_id for c in request.changes if c.HasField("context")]
                                  + list(request.created_user_ids),
                                  self.contexts.origin, everyone=request.segments_changed)
        if any(p.due_at <= now for p in added):
            self.on_due()

    async def erase_user(self, app_id: str, user_id: str) -> None:
        await store.erase_user(self.pool, app_id, user_id)
        self.forget_user(app_id, user_id)

    def forget_user(self, app_id: str, user_id: str) -> None:
        self.states.forget(app_id, user_id)
        self.contexts.forget(app_id, user_id)

    def on_user_erased(self, payload: str | None) -> None:
        """Another replica erased a user (store.ERASED_USERS_CHANNEL): this one forgets them
        too, or it would go on deciding from the erased user's context and history. After the
        listener reconnects (payload None) an erasure may have been missed: forget everyone."""
        if payload is None:
            self.states.clear()
            self.contexts.clear()
            return
        self.forget_user(*store.parse_state_key(payload))
