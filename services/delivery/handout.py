"""Handing messages to clients, by pull or by stream: the inbox, decision's verdict,
rendering, and one write that makes each message delivered exactly once.

Under load both round trips of a hand-out are shared: pulls that arrive while earlier calls
to decision are out go in one DecideBatch (whose reservations decision writes in one
transaction), and the hand-outs that finish together are recorded in one transaction
(store.hand_out). Caps stay exact because decision reserves under each user's lock; a
hand-out that cannot be recorded (alone or with its batch) gives its reservations back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import prometheus_client as prom
import structlog

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_grpc
from nudge.decision.v1 import decision_service_pb2 as decision_public_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudgelib import templates
from nudgelib.clients import Peer
from nudgelib.clock import Clock
from nudgelib.coalesce import Coalescer
from nudgelib.config import replicas_of
from nudgelib.errors import error_of_code
from nudgelib.loops import Backoff, Loop
from nudgelib.lru import LruCache
from services.delivery import store, streams
from services.delivery.stats import reason_name
from services.delivery.streams import StreamHub

log = structlog.get_logger(__name__)
MAX_PER_CALL = 10
# Stream offers retried after a failure (0.25 s, 0.5 s, … at most 8 s apart) before the
# re-offer rounds (NUDGE_DELIVERY_REOFFER_SECONDS) take over.
OFFER_RETRIES = 6
# DecideBatch calls out at once when decision is reached by a name, whose replicas are not known.
IN_FLIGHT_BY_NAME = 2


def calls_in_flight(setting: int, decision_target: str) -> int:
    """How many DecideBatch calls delivery keeps out at once: the setting, or else one per
    decision replica. A replica works through one batch at a time (one process), so a second
    call to it only splits what one larger batch would carry, and a larger batch costs less
    per pull (decision reserves a batch in one transaction): in make bench BENCH=pull, one
    replica, one call out gave a pull handing out nothing a p99 about the empty chain's where
    two gave 1.5 times it, and about a third more hand-outs. Behind a name (DNS: any number of
    replicas) two."""
    return setting or replicas_of(decision_target) or IN_FLIGHT_BY_NAME
# Hand-out transactions out at once; hand-outs that finish meanwhile wait and go in the next.
WRITES_IN_FLIGHT = 1


def in_app(d: decision_pb.Decision) -> pb.InAppMessage:
    return pb.InAppMessage(message_id=d.message_id, campaign_id=d.campaign_id, campaign_version=d.campaign_version,
                           variant_id=d.variant_id, content=d.content, locale=d.locale, expire_time=d.expire_time,
                           test=d.test)


class Handout:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, decision: Peer, hub: StreamHub,
                 registry: prom.CollectorRegistry, decide_in_flight: int = 2,
                 offer_backoff: Backoff = Backoff(initial=0.25, multiplier=2.0, maximum=8.0)) -> None:
        self._pool = pool
        self._clock = clock
        self._decision = decision
        self._stub = decision_grpc.DecisionInternalServiceStub(decision.channel)
        # Pulls that arrive while `decide_in_flight` calls to decision are out go together in
        # the next DecideBatch: under load a pull costs a fraction of a round trip.
        self._decides: Coalescer[None, decision_pb.DecideRequest, decision_pb.DecideResult] = Coalescer(
            self._decide_batch, max_in_flight=decide_in_flight)
        # Hand-outs that finish together (a DecideBatch's pulls, answered at once) are
        # recorded in one transaction, and those that finish while it is out in the next.
        self._writes: Coalescer[None, store.HandOut, set[str]] = Coalescer(
            self._write_batch, max_in_flight=WRITES_IN_FLIGHT)
        self.hub = hub
        self._render_failures = prom.Counter(
            "nudge_delivery_render_failures", "Messages not shown because their template failed",
            ["campaign_id"], registry=registry)
        self._unreleased = prom.Counter(
            "nudge_delivery_reservations_not_released",
            "Messages never handed out whose cap reservations decision could not be asked to release",
            registry=registry)
        self._handed = prom.Counter("nudge_delivery_messages_handed_out", "Messages handed to clients",
                                    ["via"], registry=registry)
        # Users whose inbox was empty when last read; any inbox notification forgets them.
        self._empty_inbox: LruCache[tuple[str, str], bool] = LruCache(200_000)
        self._inbox_notifications = 0
        # Tells this replica's own stream notifications apart from other replicas'.
        self._origin = uuid.uuid4().hex[:12]
        # Stream hand-outs under way, by user, and how many wait for each (see _one_at_a_time).
        self._offering: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}
        # Stream offers that failed (decision or the database away for a moment), by user:
        # failures in a row, and the retry waiting to run. A triggered message then reaches an
        # open stream moments after decision is back, not at the next re-offer round.
        self._offer_failures: dict[tuple[str, str], int] = {}
        self._offer_retries: dict[tuple[str, str], asyncio.Task] = {}
        self._offer_backoff = offer_backoff

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, app_id: str, user_id: str) -> AsyncIterator[None]:
        """One stream hand-out per user at a time on this replica, so that a stream shows
        messages in the order of their hand-out (delivered_at, then message id): a client
        resuming after the last one it got (`last_message_id`) is replayed exactly what came
        after it. Two hand-outs overlapping could reach the stream in the other order, and
        the resume would repeat the one that came first."""
        key = (app_id, user_id)
        lock, users = self._offering.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._offering[key]

    # ------------------------------------------------------------ inbox hints

    def inbox_changed(self, app_id: str, user_id: str) -> None:
        self._inbox_notifications += 1
        self._empty_inbox.pop((app_id, user_id))

    def forget_inbox_hints(self) -> None:
        self._inbox_notifications += 1
        self._empty_inbox.clear()

    async def _inbox(self, app_id: str, user_id: str, now: datetime) -> list[decision_pb.Decision]:
        if self._empty_inbox.get((app_id, user_id)):
            return []
        seen = self._inbox_notifications
        pending = await store.inbox(self._pool, app_id, user_id, now)
        if not pending and seen == self._inbox_notifications:
            self._empty_inbox.put((app_id, user_id), True)
        return pending

    # ------------------------------------------------------------ hand-out

    async def _decide_batch(self, _key: None, requests: list[decision_pb.DecideRequest]):
        reply = await self._decision.call(self._stub.DecideBatch, decision_pb.DecideBatchRequest(requests=requests))
        return reply.results

    async def _write_batch(self, _key: None, hand_outs: list[store.HandOut]) -> list[set[str]]:
        return await store.hand_out(self._pool, hand_outs)

    async def _decide(self, request: decision_pb.DecideRequest) -> decision_pb.DecideResponse:
        result = await self._decides.submit(None, request)
        if result.HasField("error"):
            raise error_of_code(result.error.code, f"decision: {result.error.message}")
        return result.response

    def _render(self, decisions, user: common_pb2.UserContext) -> tuple[list[decision_pb.Decision],
                                                                        list[decision_pb.Decision]]:
        rendered, failed = [], []
        for d in decisions:
            try:
                content = templates.render(d.content, templates.variables(
                    user, d.event_properties if d.HasField("event_properties") else None))
            except templates.RenderError as exc:
                self._render_failures.labels(d.campaign_id).inc()
                log.warning("template_failed", campaign_id=d.campaign_id, message_id=d.message_id, error=str(exc))
                failed.append(d)
                continue
            out = decision_pb.Decision()
            out.CopyFrom(d)
            out.content.CopyFrom(content)
            rendered.append(out)
        return rendered, failed

    async def hand_out(self, app_id: str, user_id: str, context: decision_public_pb.RequestContext,
                       limit: int, via: str, pending: list[decision_pb.Decision] | None = None) -> list[pb.InAppMessage]:
        """Asks decision, renders, and records what this call handed out. `pending` is the
        user's inbox when the caller already has it (just enqueued)."""
        now = self._clock.now()
        if pending is None:
            pending = await self._inbox(app_id, user_id, now)
        # Test sends skip decision (no rule holds them, no cap counts them) and come first;
        # their content was rendered when they were sent.
        tests = [d for d in pending if d.test][:limit]
        pending = [d for d in pending if not d.test]
        inbox = frozenset(d.message_id for d in tests + pending)
        if via == "stream" and not pending or len(tests) >= limit:
            decided = decision_pb.DecideResponse()
        else:
            decided = await self._decide(decision_pb.DecideRequest(
                app_id=app_id, user_id=user_id, context=context, limit=limit - len(tests), pending=pending,
                pending_only=via == "stream"))
        rendered, failed = self._render(decided.decisions, decided.user)
        rendered = tests + rendered
        dropped = [(d.message_id, reason_name(d.reason)) for d in decided.dropped]
        if not (rendered or failed or decided.control_exposures or dropped):
            return []
        try:
            # With the other hand-outs finishing now, in one transaction (store.hand_out).
            won = await self._writes.submit(None, store.HandOut(
                app_id, user_id, now, via, rendered, list(decided.control_exposures), dropped, failed, inbox))
        except Exception:
            # Nothing was handed out, so nothing decision reserved may count toward caps.
            # (A pending message another hand-out took at the same moment shares its
            # reservation with that one, which this then gives back too: a race within a
            # failure, and the cost is one message more than a cap allows, not one fewer.)
            # The same when the transaction of a batch fails: each of its hand-outs gives
            # back its own and fails, as it would alone.
            await self._give_back(app_id, user_id, [d.message_id for d in rendered + failed])
            raise
        # A template that failed: the message is dropped, and counts toward no cap.
        await self._give_back(app_id, user_id, [d.message_id for d in failed])
        if dropped or failed or any(d.message_id in won for d in pending + tests):
            self._empty_inbox.pop((app_id, user_id))
        messages = [in_app(d) for d in rendered if d.message_id in won]
        if messages:
            self._handed.labels(via).inc(len(messages))
        return messages

    async def _give_back(self, app_id: str, user_id: str, message_ids: list[str]) -> None:
        """Asks decision to release the caps it reserved for messages never handed out. Best
        effort: if decision cannot be reached either, the reservations stay and those
        messages keep counting toward the user's caps until they leave the caps' periods —
        the user may see fewer messages than the caps allow, never more. Logged and counted,
        and never raised: it must not hide why the hand-out failed."""
        if not message_ids:
            return
        try:
            await self._decision.call(self._stub.ReleaseReservations, decision_pb.ReleaseReservationsRequest(
                app_id=app_id, user_id=user_id, message_ids=message_ids))
        except Exception as exc:  # noqa: BLE001 - see above
            self._unreleased.inc(len(message_ids))
            log.warning("reservations_not_released", user_id=user_id, messages=len(message_ids), error=str(exc))

    # ------------------------------------------------------------ streams

    async def offer_to_streams(self, app_id: str, user_id: str,
                               pending: list[decision_pb.Decision] | None = None) -> None:
        """Hands the user's pending messages to their open streams, if this replica has any."""
        key = (app_id, user_id)
        if not self.hub.sessions(app_id, user_id):
            self._offer_failures.pop(key, None)
            return
        async with self._one_at_a_time(app_id, user_id):
            sessions = self.hub.sessions(app_id, user_id)
            if not sessions:
                self._offer_failures.pop(key, None)
                return
            try:
                messages = await self.hand_out(app_id, user_id, sessions[0].context, MAX_PER_CALL, "stream", pending)
            except Exception as exc:  # noqa: BLE001 - the message stays in the inbox for the next try
                self._offer_failed(app_id, user_id, exc)
                return
            self._offer_failures.pop(key, None)
            # One hand-out's messages share their delivered_at: the replay orders them by id.
            messages.sort(key=lambda m: m.message_id)
            if messages:
                # This replica's sessions now; the others' through the notification.
                self.hub.push(app_id, user_id, messages)
        if messages:
            await self._pool.execute("SELECT pg_notify($1, $2)", streams.STREAM_CHANNEL,
                                     streams.encode(self._origin, app_id, user_id, [m.message_id for m in messages]))

    def _offer_failed(self, app_id: str, user_id: str, exc: Exception) -> None:
        """Tries the offer again after a backoff (jittered, so streams that failed together do
        not all ask decision again at once); after OFFER_RETRIES failures in a row, the
        re-offer rounds take over."""
        key = (app_id, user_id)
        failures = self._offer_failures[key] = self._offer_failures.get(key, 0) + 1
        log.warning("stream_offer_failed", user_id=user_id, failures=failures, error=str(exc))
        if failures > OFFER_RETRIES:
            del self._offer_failures[key]
            return
        if key not in self._offer_retries:
            self._offer_retries[key] = asyncio.create_task(self._retry_offer(key, self._offer_backoff.delay(failures)))

    async def _retry_offer(self, key: tuple[str, str], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            del self._offer_retries[key]
        await self.offer_to_streams(*key)

    def inbox_payload(self, app_id: str, user_id: str) -> str:
        return streams.encode(self._origin, app_id, user_id)

    async def on_inbox_notify(self, payload: str | None) -> None:
        if payload is None:
            self.forget_inbox_hints()
            return
        origin, app_id, user_id, _ = streams.decode_pushed(payload)
        self.inbox_changed(app_id, user_id)
        if origin != self._origin:  # the enqueueing replica offered to its streams already
            await self.offer_to_streams(app_id, user_id)

    async def on_stream_notify(self, payload: str | None) -> None:
        if payload is None:
            return
        origin, app_id, user_id, ids = streams.decode_pushed(payload)
        if origin == self._origin or not self.hub.sessions(app_id, user_id):
            return
        decisions = await store.message_decision(self._pool, app_id, user_id, ids)
        self.hub.push(app_id, user_id, [in_app(d) for d in decisions])

    async def replay(self, app_id: str, user_id: str, last_message_id: str) -> list[pb.InAppMessage]:
        missed = await store.delivered_after(self._pool, app_id, user_id, last_message_id, self._clock.now())
        return [in_app(d) for d in missed or []]

    async def reoffer(self) -> None:
        """Offers their pending messages again to the users with open streams."""
        users = {(s.app_id, s.user_id) for s in self.hub.all_sessions()}
        for app_id, user_id in users:
            if not self._empty_inbox.get((app_id, user_id)):
                await self.offer_to_streams(app_id, user_id)

    async def reoffer_loop(self, interval: float) -> None:
        """Pending messages that could not go when offered (a closed window, a full cap) are
        offered again to open streams from time to time; a round that fails (the database
        away) is tried again at the next."""
        await Loop("reoffer", self.reoffer, poll=interval, backoff=Backoff.steady(interval)).run()
