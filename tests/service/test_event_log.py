"""Ingestion's event log against a database of its own, where these tests control everything
that reads it: concurrent replicas, the tailing gap, consumers that are down or refuse, holds
and dead letters, erasure of items in flight, backpressure, partitions and retention.

Consumers are recording in-process fakes of the segmentation, decision and delivery internal
servicers (what lies outside the code under test); the reader, storage and servicer code is real.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_internal_grpc
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_internal
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as delivery_internal_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudgelib import accounts, db
from nudgelib.clients import Peer
from nudgelib.clock import FixedClock, SystemClock
from nudgelib.eventlog.dispatcher import LogDispatcher
from nudgelib.eventlog.horizon import enter_gate, position_sql
from nudgelib.eventlog.lanes import lane_of
from nudgelib.isolation import Policy
from nudgetools.database import service_migrations
from services.ingestion import consumers, store
from services.ingestion.maintenance import Maintenance
from services.ingestion.server import spec
from services.ingestion.settings import IngestionSettings
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import Clients, create_app, event, expect_error, own_database, track

DOWN = "127.0.0.1:9"  # nothing listens there


@pytest.fixture(scope="module")
async def own_url(database_url):
    """A database of this module's own on the same server, with accounts and ingestion."""
    async def accounts_and_ingestion(url: str) -> None:
        await db.migrate(url, accounts.SCHEMA, accounts.MIGRATIONS)
        await db.migrate(url, "ingestion", service_migrations("ingestion"))

    async with own_database(database_url, "nudge_ingestion", accounts_and_ingestion) as url:
        yield url


@pytest.fixture
async def pool(own_url):
    p = await db.create_pool(own_url, "ingestion", 1, 6)
    await Maintenance(p, SystemClock(), IngestionSettings()).run_once(starting=True)
    # Each test starts from an empty log: what it sees forwarded is its own.
    await p.execute("TRUNCATE events, event_keys, log_holds, dead_letters")
    await p.execute("UPDATE log_cursors SET position = 0")
    yield p
    await p.close()


# ---------------------------------------------------------------- a recording consumer


class Recorder:
    """What a consumer received, in order: (kind, app, user, id) per item, per call."""

    def __init__(self, delay: float = 0.0, jitter: bool = True) -> None:
        self.items: list[tuple[str, str, str, str]] = []
        self.calls = 0
        self.delay = delay
        self.jitter = jitter
        self.refuse: set[str] = set()  # event ids answered with INVALID_ARGUMENT
        self.answered_at = 0.0
        self.spans: list[tuple[str, int, int]] = []  # (app, lane, position) per item taken

    async def take(self, kind, app_id, pairs, context, span=None) -> None:
        self.calls += 1
        if self.refuse & {i for _, i in pairs}:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused")
        # A consumer that takes a moment to answer, so concurrent loops do overlap.
        await asyncio.sleep(random.uniform(0, self.delay) if self.jitter else self.delay)
        self.items.extend((kind, app_id, user, item_id) for user, item_id in pairs)
        if span is not None:
            self.spans.extend(zip([app_id] * len(span.lanes), span.lanes, span.positions))
        self.answered_at = time.monotonic()


class FakeSegmentation(seg_internal_grpc.SegmentationInternalServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    async def ApplyEvents(self, request, context):
        await self.r.take("event", request.app_id, [(e.user_id, e.event_id) for e in request.events], context, request.span)
        return seg_internal.ApplyEventsResponse(applied_count=len(request.events))

    async def ApplyProfileUpdates(self, request, context):
        await self.r.take("profile", request.app_id, [(u.user_id, u.update_id) for u in request.updates], context, request.span)
        return seg_internal.ApplyProfileUpdatesResponse(applied_count=len(request.updates))


class FakeDecision(decision_internal_grpc.DecisionInternalServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    async def ApplyEvents(self, request, context):
        await self.r.take("event", request.app_id, [(e.user_id, e.event_id) for e in request.events], context, request.span)
        return decision_internal.ApplyEventsResponse(applied_count=len(request.events))


class FakeDelivery(delivery_internal_grpc.DeliveryInternalServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    async def ApplyEvents(self, request, context):
        await self.r.take("event", request.app_id, [(e.user_id, e.event_id) for e in request.events], context, request.span)
        return delivery_internal.ApplyEventsResponse()


class Consumers:
    """Fake segmentation, decision and delivery on one port; can be stopped and started again there."""

    def __init__(self, delay: float = 0.0, jitter: bool = True) -> None:
        self.segmentation = Recorder(delay, jitter)
        self.decision = Recorder(delay, jitter)
        self.delivery = Recorder(delay, jitter)
        self.port = 0
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self._server = grpc.aio.server()
        seg_internal_grpc.add_SegmentationInternalServiceServicer_to_server(FakeSegmentation(self.segmentation),
                                                                            self._server)
        decision_internal_grpc.add_DecisionInternalServiceServicer_to_server(FakeDecision(self.decision), self._server)
        delivery_internal_grpc.add_DeliveryInternalServiceServicer_to_server(FakeDelivery(self.delivery), self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(None)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def dispatcher(pool, target: str, **kwargs) -> tuple[LogDispatcher, list[Peer]]:
    peers = [Peer(c, target, INTERNAL_TOKEN) for c in store.CONSUMERS]
    targets = [consumers.Consumer(p.name, p, timeout=2.0).target() for p in peers]
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("max_backoff", 0.2)
    return LogDispatcher(pool, store.LOG, targets, **kwargs), peers


async def close(peers, fakes) -> None:
    for p in peers:
        await p.close()
    await fakes.stop()


def rows(app_id: str, events: list[common_pb2.Event]) -> store.EventRows:
    return store.EventRows(
        event_ids=[e.event_id for e in events], user_ids=[e.user_id for e in events],
        names=[e.name for e in events], occurred_us=[0 for _ in events],
        payloads=[e.SerializeToString() for e in events], lanes=[lane_of(app_id, e.user_id) for e in events])


async def insert(pool, app_id: str, *events: common_pb2.Event) -> int:
    return await store.insert_events(pool, app_id, rows(app_id, list(events)), datetime.now(timezone.utc))


async def queue_profile(pool, app_id: str, user_id: str, update_id: str) -> None:
    update = seg_internal.ProfileUpdate(update_id=update_id, user_id=user_id)
    await store.queue_profile_update(pool, app_id, update_id, user_id, lane_of(app_id, user_id),
                                     update.SerializeToString(), datetime.now(timezone.utc))


async def drained(pool) -> bool:
    """Every consumer's cursor is past every item it takes, and no app is held."""
    return await pool.fetchval(
        """SELECT NOT EXISTS (SELECT 1 FROM log_cursors c JOIN events e ON e.lane = c.lane AND e.position > c.position
                              WHERE c.consumer = 'segmentation' OR e.kind = 0)
              AND NOT EXISTS (SELECT 1 FROM log_holds)""")


def taken(recorder) -> list[str]:
    return [i for *_, i in recorder.items]


def users_in_lane(app_id: str, lane: int, count: int) -> list[str]:
    return [u for u in (f"u{i}" for i in range(2000)) if lane_of(app_id, u) == lane][:count]


# ---------------------------------------------------------------- replicas


async def test_concurrent_replicas_forward_each_item_once_and_keep_each_user_in_order(own_url, pool):
    fakes = Consumers(delay=0.004)
    await fakes.start()
    app = "app_replicas"
    # Two replicas: each its own pool, as separate processes would have.
    pools = [await db.create_pool(own_url, "ingestion", 1, 4) for _ in range(2)]
    replicas = [dispatcher(p, fakes.target, workers=2, batch_items=60) for p in pools]
    running = [asyncio.create_task(d.run()) for d, _ in replicas]
    users = [f"user{i}" for i in range(24)]
    sent: dict[str, list[str]] = defaultdict(list)  # per user, what segmentation must see, in order

    async def producer(mine: list[str]) -> None:
        # One producer per group of users, each batch committed before the next is sent: the
        # order a user's items must be forwarded in is the order they were committed.
        for b in range(30):
            if b % 7 == 3:
                user = mine[b % len(mine)]
                update_id = f"{user}#{b}p"
                await queue_profile(pool, app, user, update_id)
                sent[user].append(update_id)
            batch = [event(f"{u}#{b}.{j}", u, "tap") for u in mine for j in range(2)]
            await insert(pool, app, *batch)
            for e in batch:
                sent[e.user_id].append(e.event_id)
            for d, _ in replicas:
                d.wake()
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(producer(users[k::4]) for k in range(4)))
        await eventually(lambda: drained(pool), timeout=20)
    finally:
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for d, peers in replicas:
            for p in peers:
                await p.close()
        for p in pools:
            await p.close()
        await fakes.stop()

    events_only = {u: [i for i in v if not i.endswith("p")] for u, v in sent.items()}
    for name, recorder, expected in (("segmentation", fakes.segmentation, sent),
                                     ("decision", fakes.decision, events_only),
                                     ("delivery", fakes.delivery, events_only)):
        ids = taken(recorder)
        assert len(ids) == len(set(ids)), f"{name} received an item twice"
        seen: dict[str, list[str]] = defaultdict(list)
        for _, _, user, item in recorder.items:
            seen[user].append(item)
        assert seen == expected, f"{name} saw a user's items out of order"
        # What the consumer keys its positions by ascends per (app, lane), across calls.
        last: dict[tuple[str, int], int] = {}
        for app_id, lane, position in recorder.spans:
            assert position > last.get((app_id, lane), -1), f"{name}: positions went back in lane {lane}"
            last[(app_id, lane)] = position
    # Both replicas took part (otherwise this would not test concurrent replicas).
    for d, _ in replicas:
        assert d.forwarded > 0


# ---------------------------------------------------------------- the tailing gap


async def test_an_item_that_commits_after_a_later_one_is_not_passed_over(pool):
    """Writer A takes its position first and commits last. A reader that forwarded B's higher
    position before A committed would move its cursor past A's for ever; it must wait for A."""
    fakes = Consumers()
    await fakes.start()
    app = "app_gap"
    d, peers = dispatcher(pool, fakes.target, workers=1, horizon_max_age=0)  # a fresh horizon each cycle
    lane = 5
    early, late = users_in_lane(app, lane, 2)
    slow = await pool.acquire()
    try:
        tx = slow.transaction()
        await tx.start()
        await enter_gate(slow, store.LOG.gate)
        # A: the same insert ingestion makes, left uncommitted (a lower transaction id).
        await slow.execute(
            f"INSERT INTO events (app_id, event_id, user_id, name, occurred_at, received_at, payload, kind, lane, position)"
            f" VALUES ($1, 'A', $2, 'tap', now(), now(), $3, 0, $4, {position_sql('1')})",
            app, early, event("A", early, "tap").SerializeToString(), lane)
        await insert(pool, app, event("B", late, "tap"))  # B: a higher position, committed
        assert await d.drain_once("decision") == (0, False)  # B is above the horizon: not yet
        await tx.commit()
        await d.drain_once("decision")
        assert taken(fakes.decision) == ["A", "B"]
    finally:
        await pool.release(slow)
        await close(peers, fakes)


async def test_a_long_transaction_outside_the_log_holds_no_reader_back(pool):
    """Only the log's writers (inside the gate) bound the horizon: a transaction elsewhere in
    the database that writes and stays open does not stall forwarding."""
    fakes = Consumers()
    await fakes.start()
    app = "app_long"
    d, peers = dispatcher(pool, fakes.target, workers=1)
    other = await pool.acquire()
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute("CREATE TEMP TABLE elsewhere (x int); INSERT INTO elsewhere VALUES (1)")
        assert await other.fetchval("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
        await insert(pool, app, event("after", "u", "tap"))
        await d.drain_once("decision")
        assert taken(fakes.decision) == ["after"]
        await tx.rollback()
    finally:
        await pool.release(other)
        await close(peers, fakes)


# ---------------------------------------------------------------- consumers down, refusing


async def test_items_wait_for_a_consumer_that_is_down_and_drain_when_it_is_back(pool):
    fakes = Consumers()
    await fakes.start()
    port = fakes.port
    await fakes.stop()
    app = "app_down"
    d, peers = dispatcher(pool, f"127.0.0.1:{port}", workers=1)
    task = asyncio.create_task(d.run())
    try:
        await insert(pool, app, *[event(f"w{i}", f"u{i % 3}", "tap") for i in range(9)])
        d.wake()
        await asyncio.sleep(0.5)
        backlog, age = await d.measure_backlog(1000)
        assert backlog == {"segmentation": 9, "decision": 9, "delivery": 9} and age["segmentation"] > 0
        # Back on the same port: the loops' retries find it.
        fakes = Consumers()
        fakes.port = port
        await fakes.start()
        # Each consumer's loops retry on their own backoff: all drain, not at the same moment.
        await eventually(lambda: drained(pool), timeout=10)
        assert (await d.measure_backlog(1000))[0] == {
            "segmentation": 0, "decision": 0, "delivery": 0}
        for recorder in (fakes.segmentation, fakes.decision, fakes.delivery):
            assert sorted(taken(recorder)) == sorted(f"w{i}" for i in range(9))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(peers, fakes)


async def test_a_refused_item_holds_only_its_app_in_its_lane_then_is_set_aside(pool):
    fakes = Consumers()
    await fakes.start()
    fakes.decision.refuse = {"bad"}
    lane = 3
    same, neighbour = users_in_lane("app_bad", lane, 2)
    other_lane_user = next(u for u in (f"v{i}" for i in range(200)) if lane_of("app_bad", u) != lane)
    other_app_user = users_in_lane("app_fine", lane, 1)[0]
    d, peers = dispatcher(pool, fakes.target, workers=1, policy=Policy(max_attempts=3, hold_initial=0.001,
                                                                       hold_maximum=0.001))
    try:
        await insert(pool, "app_bad", event("before", same, "tap"), event("bad", same, "tap"),
                     event("behind", neighbour, "tap"), event("elsewhere", other_lane_user, "tap"))
        await insert(pool, "app_fine", event("fine", other_app_user, "tap"))
        await d.drain_once("decision")
        # The refused item's app waits in its lane (its user and the neighbour behind it); the
        # same app in another lane, and another app in the same lane, went through at once.
        assert sorted(taken(fakes.decision)) == ["before", "elsewhere", "fine"]
        hold = await pool.fetchrow("SELECT lane, app_id, attempts, error FROM log_holds WHERE consumer = 'decision'")
        assert tuple(hold) == (lane, "app_bad", 1, "INVALID_ARGUMENT: refused")
        await insert(pool, "app_bad", event("later", same, "tap"))
        for _ in range(4):
            await asyncio.sleep(0.01)  # past the app's hold
            await d.drain_once("decision")
        # Refused three times in a row: set aside; the app's later items followed, in order.
        assert taken(fakes.decision)[3:] == ["behind", "later"]
        dead = await pool.fetch("SELECT consumer, lane, user_ids, error, attempts, kind FROM dead_letters")
        assert [tuple(r) for r in dead] == [("decision", lane, [same], "INVALID_ARGUMENT: refused", 3, "event")]
        assert d.dead_lettered == 1
        assert await pool.fetchval("SELECT count(*) FROM log_holds") == 0
        # The other consumers never refused: they took everything, the bad item included.
        for consumer in ("segmentation", "delivery"):
            await d.drain_once(consumer)
        assert sorted(taken(fakes.segmentation)) == sorted(["before", "bad", "behind", "elsewhere", "fine", "later"])
    finally:
        await close(peers, fakes)


async def test_a_loop_claims_the_lanes_that_hold_items(pool):
    """A loop claims a share of the lanes; woken for a new item, it must claim that item's lane
    (not empty ones), or the item waits for the next poll."""
    fakes = Consumers()
    await fakes.start()
    app = "app_lanes"
    d, peers = dispatcher(pool, fakes.target, workers=4)  # a claim takes 4 of the 16 lanes
    try:
        users = {lane_of(app, f"u{i}"): f"u{i}" for i in range(400)}
        assert len(users) == 16
        for lane, user in sorted(users.items()):
            await insert(pool, app, event(f"e{lane}", user, "tap"))
            d.wake()  # as ingestion's intake does after a commit: the next cycle sees it
            assert await d.drain_once("decision") == (1, False), f"lane {lane}"
    finally:
        await close(peers, fakes)


async def test_a_profile_update_is_stored_once_per_update_id(pool):
    """A retried Identify (same request_id, so the same update id) is stored, and forwarded,
    once: segmentation keeps no applied ids any more."""
    fakes = Consumers()
    await fakes.start()
    d, peers = dispatcher(pool, fakes.target, workers=1)
    try:
        for _ in range(2):
            await queue_profile(pool, "app_identify", "u", "rq_same")
        await d.drain_once("segmentation")
        assert taken(fakes.segmentation) == ["rq_same"]
    finally:
        await close(peers, fakes)


# ---------------------------------------------------------------- erasure of items in flight


async def test_erasing_a_user_removes_their_items_not_yet_forwarded(pool):
    fakes = Consumers()
    await fakes.start()
    app = "app_erase"
    gone = "gone"
    neighbours = users_in_lane(app, lane_of(app, gone), 3)[1:]
    await insert(pool, app, event("g1", gone, "tap"), event("a1", neighbours[0], "tap"), event("g2", gone, "tap"),
                 event("b1", neighbours[1], "tap"))
    await insert(pool, app, event("g3", gone, "tap"))
    await queue_profile(pool, app, gone, "gp")
    await store.erase_user(pool, app, gone, lane_of(app, gone))
    assert await pool.fetchval("SELECT count(*) FROM events WHERE app_id = $1 AND user_id = $2", app, gone) == 0
    d, peers = dispatcher(pool, fakes.target, workers=1)
    try:
        for consumer in store.CONSUMERS:
            await d.drain_once(consumer)
        assert taken(fakes.segmentation) == ["a1", "b1"]
        assert taken(fakes.decision) == ["a1", "b1"]
    finally:
        await close(peers, fakes)


async def test_erasure_waits_for_a_reader_in_progress_on_the_users_lane(pool):
    """An item being forwarded when DeleteUser runs is delivered first, then erasure proceeds:
    the erase calls that follow can no longer be overtaken by it."""
    fakes = Consumers(delay=0.3, jitter=False)
    await fakes.start()
    app = "app_inflight"
    await insert(pool, app, event("f1", "flying", "tap"))
    d, peers = dispatcher(pool, fakes.target, workers=1)
    try:
        sending = asyncio.create_task(d.drain_once("decision"))
        await asyncio.sleep(0.1)  # the loop holds the lane, its call is on the wire
        await store.erase_user(pool, app, "flying", lane_of(app, "flying"))
        erased_at = time.monotonic()
        await sending
        assert taken(fakes.decision) == ["f1"]
        assert fakes.decision.answered_at < erased_at, "erasure went ahead while the lane was being forwarded"
        # Segmentation's reader had not taken it: it is gone.
        await d.drain_once("segmentation")
        assert fakes.segmentation.items == []
    finally:
        await close(peers, fakes)


# ---------------------------------------------------------------- backpressure


def retry_info(exc: grpc.aio.AioRpcError) -> tuple[str, float]:
    raw = dict(exc.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    reason, delay = "", -1.0
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            delay = info.retry_delay.ToTimedelta().total_seconds()
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return reason, delay


async def test_backlog_past_its_bound_is_refused_with_retry_advice(own_url, pool):
    settings = replace(IngestionSettings(), max_backlog_events=5, pressure_refresh_interval=0.05, retry_after=3.0)
    host = await start_host(spec(settings), own_url, {"segmentation": DOWN, "decision": DOWN, "delivery": DOWN})
    app = await create_app(own_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            api = Clients(lambda _: channel)
            batch = track([event(f"bp{i}", "u", "tap") for i in range(8)])
            assert (await api.ingestion.TrackEvents(batch, metadata=app.auth("events"))).accepted_count == 8

            async def refused():
                try:
                    await api.ingestion.TrackEvents(track([event("late", "u", "tap")]), metadata=app.auth("events"))
                except grpc.aio.AioRpcError as exc:
                    return exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and exc
                return False

            exc = await eventually(refused, timeout=5)
            assert retry_info(exc) == ("RESOURCE_EXHAUSTED", 3.0)
            await expect_error(api.ingestion.Identify(pb.IdentifyRequest(user_id="u"), metadata=app.auth("events")),
                               grpc.StatusCode.RESOURCE_EXHAUSTED)
            registry = host.registry
            # 8 or 9 waiting, counted up to one past the bound they are compared with.
            assert registry.get_sample_value("nudge_log_backlog", {"log": "ingestion", "consumer": "segmentation"}) == 6
            assert registry.get_sample_value("nudge_ingestion_backpressure_refusals_total", {"reason": "backlog"}) >= 2
            # Once the backlog is gone (here: taken by hand), events are accepted again.
            await pool.execute("UPDATE log_cursors SET position = (SELECT max(position) FROM events)")

            async def accepted():
                try:
                    return (await api.ingestion.TrackEvents(track([event("later", "u", "tap")]),
                                                            metadata=app.auth("events"))).accepted_count == 1
                except grpc.aio.AioRpcError:
                    return False

            await eventually(accepted, timeout=5)
    finally:
        await host.stop()


async def test_memory_past_its_bound_is_refused(own_url):
    settings = replace(IngestionSettings(), max_memory_mb=1)
    host = await start_host(spec(settings), own_url, {"segmentation": DOWN, "decision": DOWN, "delivery": DOWN})
    app = await create_app(own_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            exc = await expect_error(Clients(lambda _: channel).ingestion.TrackEvents(
                track([event("m1", "u", "tap")]), metadata=app.auth("events")), grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert retry_info(exc)[0] == "RESOURCE_EXHAUSTED"
            assert "memory" in exc.details()
    finally:
        await host.stop()


# ---------------------------------------------------------------- partitions and retention


async def test_partitions_retention_and_deduplication_across_days(own_url, pool):
    start = datetime(2031, 3, 10, 12, 0, tzinfo=timezone.utc)
    clock = FixedClock(start)
    settings = replace(IngestionSettings(), event_retention_days=2, dedupe_retention_days=2, partitions_ahead_days=2)
    host = await start_host(spec(settings), own_url, {"segmentation": DOWN, "decision": DOWN, "delivery": DOWN},
                            clock=clock)
    app = await create_app(own_url)

    async def partitions() -> set[str]:
        return {r["relname"] for r in await pool.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events_p2031%'")}

    async def stored(event_id: str) -> list[str]:
        return [r["tableoid"] for r in await pool.fetch(
            "SELECT tableoid::regclass::text FROM events WHERE app_id = $1 AND event_id = $2", app.id, event_id)]

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            api = Clients(lambda _: channel)

            async def send(*ids):
                return await api.ingestion.TrackEvents(track([event(i, "u", "tap") for i in ids]),
                                                       metadata=app.auth("events"))

            # Start-up made today's partition and the next ones.
            assert await partitions() >= {"events_p20310310", "events_p20310311", "events_p20310312"}
            assert (await send("e1")).duplicate_count == 0
            clock.advance(timedelta(days=1))
            # A day later the event lands in another partition, and is still known.
            reply = await send("e1", "e2")
            assert (reply.accepted_count, reply.duplicate_count) == (2, 1)
            assert await stored("e1") == ["events_p20310310"] and await stored("e2") == ["events_p20310311"]

            clock.set(datetime(2031, 3, 13, 6, 0, tzinfo=timezone.utc))
            # The consumers are down: the 10th still holds e1, unread, and is kept past its
            # retention rather than dropped with it.
            plan = await Maintenance(host.pool, clock, settings).run_once()
            assert plan.kept == [datetime(2031, 3, 10).date()] and await stored("e1") == ["events_p20310310"]
            # Once every consumer has taken it (here: by hand), it goes.
            await pool.execute("UPDATE log_cursors SET position = (SELECT max(position) FROM events)")
            await Maintenance(host.pool, clock, settings).run_once()
            found = await partitions()
            # Retention 2 days: the 10th is wholly older and dropped; the 11th holds younger rows.
            assert "events_p20310310" not in found
            assert {"events_p20310311", "events_p20310313", "events_p20310315"} <= found
            assert await stored("e1") == [] and await stored("e2") == ["events_p20310311"]
            # e1's key (received on the 10th, 12:00) is past the 2-day dedupe retention and
            # forgotten; e2's (the 11th, 12:00) is not yet: the documented window, no less.
            reply = await send("e1", "e2")
            assert (reply.accepted_count, reply.duplicate_count) == (2, 1)
            assert await stored("e1") == ["events_p20310313"]
    finally:
        await host.stop()
        await pool.execute("DELETE FROM event_keys WHERE received_at > '2031-01-01'")
        for name in await partitions():
            await pool.execute(f"DROP TABLE {name}")


