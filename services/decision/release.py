"""Releases triggered sends when they come due: claimed by exactly one replica, judged
again (`judge.py` says what each rule does), then handed to delivery, deferred, or dropped.

A control-group user gets nothing and the exposure is recorded. What passes goes to
delivery's inbox. A send that ends here (expired, or dropped with a reason) is reported to
delivery too, in the same call, under the arm the user has or would get, without content:
delivery's statistics then count every send that came due exactly once (a send set aside as
`failed`, below, as dropped with reason FAILED). Caps are counted later, when delivery hands
the message to a client
(Decide with `pending`), which judges it again. A send that waits for segmentation to apply
its trigger event is judged once more on a context asked of segmentation itself.

Rows are claimed with FOR UPDATE SKIP LOCKED in a transaction that lasts until delivery has
the messages; if delivery is down, nothing is marked and the rows are claimed again later.
(On Citus pending_sends stays a table of the coordinator, so this claim across users is a
local one: docs/citus.md.)
Delivery keys the inbox on the message id, so a release repeated after a crash shows once.

A send whose handling raises something other than the database or a peer being away (a
poisoned campaign, a bug), or that delivery refuses on its own (any status but those of a
service down, see nudgelib.isolation), does not hold up the batch: the others are settled, it
is looked at again after a growing pause, and after NUDGE_DEAD_LETTER_AFTER_ATTEMPTS such
failures it is set aside with status `failed` and the error as its outcome, logged at
warning and counted (`nudge_decision_release_failed_total`). The user's other sends are
judged on their own meanwhile (each send is its own message; they were never ordered).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import prometheus_client as prom
import structlog
from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as delivery_grpc
from nudgelib.clients import Peer
from nudgelib.dead_letters import fault_of, warn_dead
from nudgelib.isolation import Fault, Ledger, Policy
from nudgelib.loops import AT_ONCE, Backoff, Loop, expected
from nudgelib.protoconv import to_timestamp
from services.decision import store
from services.decision.decider import Decider
from services.decision.drops import EXPIRED, drop_reason
from services.decision.judge import WAITING_FOR_SEGMENTATION, judge
from services.decision.model import Action, Judgement, PendingSend, UserState
from services.decision.variants import CONTROL, arm_for, pick_content

log = structlog.get_logger(__name__)

# Who the judge sees when a send is dropped before any context is read (expired, campaign gone).
_NOBODY = common_pb2.UserContext()


@dataclass(frozen=True)
class Outcome:
    status: str  # released | pending (deferred) | dropped | expired | control | failed
    reason: str = ""
    due_at: datetime | None = None
    decision: internal_pb.Decision | None = None
    arm: tuple[str, str] | None = None  # (campaign, variant) to persist
    control: internal_pb.Decision | None = None  # a first control exposure, for delivery


class Releaser:
    def __init__(self, decider: Decider, delivery: Peer, batch: int, poll_seconds: float,
                 failures: Policy = Policy(), registry: prom.CollectorRegistry | None = None) -> None:
        self._d = decider
        self._delivery = delivery
        self._stub = delivery_grpc.DeliveryInternalServiceStub(delivery.channel)
        self._batch = batch
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        # The earliest send deferred to wait for segmentation, so the loop looks again then.
        self._recheck_at: datetime | None = None
        # Failures of sends whose handling raised, by (app, id) (nudgelib.isolation).
        self.failures = Ledger(failures)
        self._failed = prom.Counter(
            "nudge_decision_release_failed", "Pending sends set aside as failed after repeated errors",
            registry=registry) if registry is not None else None

    def wake(self, _payload: str | None = None) -> None:
        self._wake.set()

    async def run(self) -> None:
        async def step() -> float | None:
            if await self.release_due() >= self._batch:
                return AT_ONCE
            if self._recheck_at is None:
                return None
            return max(0.0, (self._recheck_at - self._d.clock.now()).total_seconds())

        # Delivery or the database down: back off, retry.
        await Loop("release", step, poll=self._poll, backoff=Backoff(maximum=5.0), wake=self._wake).run()

    async def _judge(self, row: asyncpg.Record, now: datetime) -> tuple[Judgement, common_pb2.UserContext]:
        app_id, user_id = row["app_id"], row["user_id"]
        send = PendingSend(user_id, row["campaign_id"], row["expire_at"], row["due_at"], row["cause"],
                           row["triggered_at"])
        catalog = await self._d.catalog.get(app_id)
        rules = catalog.by_id.get(row["campaign_id"])
        if rules is None or now >= row["expire_at"]:
            return judge(send, rules, catalog.settings, _NOBODY, UserState(), now), _NOBODY
        user = await self._d.contexts.get(app_id, user_id)
        state = await self._d.states.get(app_id, user_id)
        verdict = judge(send, rules, catalog.settings, user, state, now)
        if verdict.reason == WAITING_FOR_SEGMENTATION:
            # The cached context may predate the trigger event: ask segmentation itself.
            user = await self._d.contexts.get(app_id, user_id, fresh=True)
            verdict = judge(send, rules, catalog.settings, user, state, now)
        return verdict, user

    async def _outcome(self, row: asyncpg.Record, now: datetime) -> Outcome:
        verdict, user = await self._judge(row, now)
        if verdict.action is Action.DROP:
            return Outcome("expired" if verdict.reason == EXPIRED else "dropped", verdict.reason)
        if verdict.action is Action.DEFER:
            if verdict.until is None:  # not reached: without a client, every wait has an end
                return Outcome("dropped", verdict.reason)
            return Outcome("pending", verdict.reason, due_at=verdict.until)
        catalog = await self._d.catalog.get(row["app_id"])
        campaign = catalog.by_id[row["campaign_id"]].campaign
        if verdict.action is Action.CONTROL:
            if not verdict.new_arm:
                return Outcome("control", verdict.reason)
            return Outcome("control", verdict.reason, arm=(campaign.id, CONTROL), control=internal_pb.Decision(
                message_id=row["id"], campaign_id=campaign.id, campaign_version=campaign.version,
                expire_time=to_timestamp(now), conversion_events=campaign.conversion.event_names,
                conversion_deadline=campaign.conversion.deadline))
        variant = next(v for v in campaign.variants if v.id == verdict.arm)
        content = pick_content(variant, user.locale, catalog.settings.default_locale)
        properties = struct_pb2.Struct()
        properties.update(json.loads(row["event_properties"]) if isinstance(row["event_properties"], str)
                          else row["event_properties"])
        return Outcome("released", decision=internal_pb.Decision(
            message_id=row["id"], campaign_id=campaign.id, campaign_version=campaign.version,
            variant_id=verdict.arm, content=content.content, locale=content.locale,
            expire_time=to_timestamp(row["expire_at"]), event_properties=properties,
            conversion_events=campaign.conversion.event_names, conversion_deadline=campaign.conversion.deadline))

    async def _unsent(self, rows: list[asyncpg.Record],
                      outcomes: list[Outcome]) -> dict[tuple[str, str], delivery_pb.UnsentMessage]:
        """The sends that end here, as delivery records them: each under the arm its user has
        or would get (a stopped campaign is not in the catalog: its definition is read, one
        query per app)."""
        ended = [(r, o) for r, o in zip(rows, outcomes) if o.status in ("dropped", "expired", "failed")]
        if not ended:
            return {}
        definitions: dict[tuple[str, str], pb.Campaign] = {}
        missing: dict[str, set[str]] = {}
        for r, _ in ended:
            rules = (await self._d.catalog.get(r["app_id"])).by_id.get(r["campaign_id"])
            if rules is not None:
                definitions[(r["app_id"], r["campaign_id"])] = rules.campaign
            else:
                missing.setdefault(r["app_id"], set()).add(r["campaign_id"])
        for app_id, ids in missing.items():
            for campaign_id, campaign in (await store.campaign_definitions(self._d.pool, app_id, list(ids))).items():
                definitions[(app_id, campaign_id)] = campaign
        out = {}
        for r, o in ended:
            campaign = definitions.get((r["app_id"], r["campaign_id"]))
            if campaign is None or not campaign.variants:
                continue  # no longer stored: nothing to count it under
            try:
                arm, _ = arm_for(campaign, r["user_id"], await self._d.states.get(r["app_id"], r["user_id"]))
            except Exception as exc:  # noqa: BLE001 - a poisoned campaign must not fail the batch
                if expected(exc):  # the database or a peer away: the loop backs off
                    raise
                # Settled all the same; only the count in delivery's statistics is lost.
                log.warning("unsent_not_reported", app_id=r["app_id"], campaign_id=r["campaign_id"],
                            send=r["id"], error=f"{type(exc).__name__}: {exc}")
                continue
            expired = o.status == "expired"
            reason = (internal_pb.DROP_REASON_UNSPECIFIED if expired else internal_pb.DROP_REASON_FAILED
                      if o.status == "failed" else drop_reason(o.reason))
            out[(r["app_id"], r["id"])] = delivery_pb.UnsentMessage(
                message_id=r["id"], campaign_id=campaign.id, campaign_version=campaign.version, variant_id=arm,
                expired=expired, reason=reason)
        return out

    async def release_due(self) -> int:
        """Handles one batch of due sends; returns how many rows it settled."""
        now = self._d.clock.now()
        self._recheck_at = None
        async with self._d.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT * FROM pending_sends WHERE status = 'pending' AND due_at <= $1"
                " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED", now, self._batch)
            if not rows:
                return 0
            users: dict[str, list[str]] = {}
            for r in rows:
                users.setdefault(r["app_id"], []).append(r["user_id"])
            await asyncio.gather(*(self._d.warm(app_id, ids) for app_id, ids in users.items()))
            # Together: a send that waits for segmentation asks it again, and those asks (one
            # per such user) coalesce there into one read instead of following each other.
            outcomes = list(await asyncio.gather(*(self._guarded(r, now) for r in rows)))
            waiting = [o.due_at for o in outcomes if o.reason == WAITING_FOR_SEGMENTATION]
            self._recheck_at = min(waiting, default=None)
            unsent = await self._unsent(rows, outcomes)
            by_user: dict[tuple[str, str], delivery_pb.EnqueueMessagesRequest] = {}
            for r, o in zip(rows, outcomes):
                key = (r["app_id"], r["user_id"])
                gone = unsent.get((r["app_id"], r["id"]))
                if o.decision is not None or o.control is not None or gone is not None:
                    request = by_user.setdefault(key, delivery_pb.EnqueueMessagesRequest(app_id=key[0], user_id=key[1]))
                    if o.decision is not None:
                        request.decisions.append(o.decision)
                    elif o.control is not None:
                        request.control_exposures.append(o.control)
                    else:
                        request.unsent.append(gone)
            # One call per user, all at once: delivery offers each to the user's open streams
            # before it answers, and one user's offer need not wait for another's.
            answers = await asyncio.gather(*(self._delivery.call(self._stub.EnqueueMessages, request)
                                             for request in by_user.values()), return_exceptions=True)
            self._refused_by_delivery(rows, outcomes, dict(zip(by_user, answers)), set(unsent), now)
            # First control exposures make the arm sticky: one statement for the batch, in its
            # transaction (a control exposure reserves no cap, so no user lock is needed).
            arms = [(r["app_id"], r["user_id"], *o.arm) for r, o in zip(rows, outcomes) if o.arm is not None]
            await store.assign_arms(conn, arms, now)
            for app_id, user_id, _, _ in arms:
                self._d.states.forget(app_id, user_id)
            await conn.execute(
                """UPDATE pending_sends p SET status = x.status, outcome = x.outcome,
                       due_at = coalesce(x.due_at, p.due_at), updated_at = now()
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                       AS x(app_id, id, status, outcome, due_at)
                   WHERE p.app_id = x.app_id AND p.id = x.id""",
                [r["app_id"] for r in rows], [r["id"] for r in rows], [o.status for o in outcomes],
                [o.reason for o in outcomes], [o.due_at for o in outcomes])
        for r, o in zip(rows, outcomes):
            log.debug("pending_send_settled", app_id=r["app_id"], campaign_id=r["campaign_id"],
                     status=o.status, reason=o.reason)
        return len(rows)

    # ------------------------------------------------------------ sends that fail on their own

    async def _guarded(self, row: asyncpg.Record, now: datetime) -> Outcome:
        """The send's outcome; if judging it raises what is not the database or a peer away,
        the outcome of a failure (`_failure`) instead of failing the whole batch."""
        try:
            return await self._outcome(row, now)
        except Exception as exc:  # noqa: BLE001 - a bug or poisoned data of this one send
            if expected(exc):  # the database or a peer away: the loop backs off
                raise
            return self._failure(row, f"{type(exc).__name__}: {exc}", now)

    def _refused_by_delivery(self, rows: list[asyncpg.Record], outcomes: list[Outcome],
                             answers: dict[tuple[str, str], object], reported: set[tuple[str, str]],
                             now: datetime) -> None:
        """Delivery down: raised, the batch is retried whole. A user's call refused on its own:
        every send that call carried (released, control, or an end `reported` for delivery's
        statistics) fails (`_failure`) and is judged again later, so none is settled without
        delivery having it; the other users' stand. (One that reaches `failed` here is not
        counted by delivery, which refused it: the warning and the metric say so.)"""
        refused: dict[tuple[str, str], str] = {}
        for key, answer in answers.items():
            if isinstance(answer, BaseException):
                fault, error = fault_of(answer)
                if fault is Fault.DOWN:
                    raise answer
                refused[key] = error
        for n, (r, o) in enumerate(zip(rows, outcomes)):
            key = (r["app_id"], r["user_id"])
            carried = o.decision is not None or o.control is not None or (r["app_id"], r["id"]) in reported
            if key in refused and carried:
                outcomes[n] = self._failure(r, f"delivery: {refused[key]}", now)

    def _failure(self, row: asyncpg.Record, error: str, now: datetime) -> Outcome:
        """Looked at again after a growing pause; set aside as `failed` once it has failed
        the policy's number of times."""
        key = (row["app_id"], row["id"])
        if not self.failures.failed(key):
            pause = self.failures.policy.hold(self.failures.attempts(key))
            log.info("pending_send_failed", app_id=row["app_id"], campaign_id=row["campaign_id"], error=error,
                     attempts=self.failures.attempts(key), retry_in=pause)
            return Outcome("pending", "RELEASE_FAILED", due_at=now + timedelta(seconds=pause))
        warn_dead("release", row["app_id"], row["user_id"], error, campaign_id=row["campaign_id"],
                  send=row["id"], attempts=self.failures.policy.max_attempts)
        if self._failed is not None:
            self._failed.inc()
        return Outcome("failed", error[:2000])
