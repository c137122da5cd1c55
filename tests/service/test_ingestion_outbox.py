"""Ingestion against a database of its own, where these tests control everything that drains
the outbox: concurrent replicas, consumers that are down or refuse, erasure of rows in flight,
backpressure, partitions and retention.

Consumers are recording in-process fakes of the segmentation and decision internal servicers
(what lies outside the code under test); the dispatch, storage and servicer code is real.
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
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_internal
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as delivery_internal_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudgelib import accounts, db
from nudgelib.clients import Peer
from nudgelib.clock import FixedClock, SystemClock
from nudgelib.dead_letters import FailureSettings
from nudgetools.database import service_migrations
from services.ingestion import consumers, store
from services.ingestion.framing import frame_item, item_header
from services.ingestion.keys import lane_of
from services.ingestion.maintenance import Maintenance
from services.ingestion.outbox import OutboxDispatcher
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
    # Each test starts from an empty outbox: what it sees forwarded is its own.
    await p.execute("TRUNCATE outbox, dead_letters")
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

    async def take(self, kind, app_id, pairs, context) -> None:
        self.calls += 1
        if self.refuse & {i for _, i in pairs}:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused")
        # A consumer that takes a moment to answer, so concurrent loops do overlap.
        await asyncio.sleep(random.uniform(0, self.delay) if self.jitter else self.delay)
        self.items.extend((kind, app_id, user, item_id) for user, item_id in pairs)
        self.answered_at = time.monotonic()


class FakeSegmentation(seg_internal_grpc.SegmentationInternalServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    async def ApplyEvents(self, request, context):
        await self.r.take("event", request.app_id, [(e.user_id, e.event_id) for e in request.events], context)
        return seg_internal.ApplyEventsResponse(applied_count=len(request.events))

    async def ApplyProfileUpdates(self, request, context):
        await self.r.take("profile", request.app_id, [(u.user_id, u.update_id) for u in request.updates], context)
        return seg_internal.ApplyProfileUpdatesResponse(applied_count=len(request.updates))


class FakeDecision(decision_internal_grpc.DecisionInternalServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    async def ApplyEvents(self, request, context):
        await self.r.take("event", request.app_id, [(e.user_id, e.event_id) for e in request.events], context)
        return decision_internal.ApplyEventsResponse(applied_count=len(request.events))


class FakeDelivery(delivery_internal_grpc.DeliveryInternalServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    async def ApplyEvents(self, request, context):
        await self.r.take("event", request.app_id, [(e.user_id, e.event_id) for e in request.events], context)
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


def dispatcher(pool, target: str, **kwargs) -> tuple[OutboxDispatcher, list[Peer]]:
    peers = [Peer(c, target, INTERNAL_TOKEN) for c in store.CONSUMERS]
    targets = {p.name: consumers.Consumer(p.name, p, timeout=2.0) for p in peers}
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("max_backoff", 0.2)
    return OutboxDispatcher(pool, targets, **kwargs), peers


def rows(app_id: str, events: list[common_pb2.Event]) -> store.EventRows:
    return store.EventRows(
        event_ids=[e.event_id for e in events], user_ids=[e.user_id for e in events],
        names=[e.name for e in events], occurred_us=[0 for _ in events],
        payloads=[e.SerializeToString() for e in events], lanes=[lane_of(app_id, e.user_id) for e in events])


async def queue_profile(pool, app_id: str, user_id: str, update_id: str) -> None:
    update = seg_internal.ProfileUpdate(update_id=update_id, user_id=user_id)
    await store.queue_profile_update(pool, app_id, user_id, lane_of(app_id, user_id),
                                     frame_item(update.SerializeToString()))


# ---------------------------------------------------------------- replicas


async def test_concurrent_replicas_forward_each_row_once_and_keep_each_user_in_order(own_url, pool):
    fakes = Consumers(delay=0.004)
    await fakes.start()
    app = "app_replicas"
    # Two replicas: each its own pool, as separate processes would have.
    pools = [await db.create_pool(own_url, "ingestion", 1, 4) for _ in range(2)]
    replicas = [dispatcher(p, fakes.target, workers=2, batch_events=60) for p in pools]
    running = [asyncio.create_task(d.run()) for d, _ in replicas]
    users = [f"user{i}" for i in range(24)]
    sent: dict[str, list[str]] = defaultdict(list)  # per user, what segmentation must see, in order

    async def producer(mine: list[str], k: int) -> None:
        # One producer per group of users, each batch committed before the next is sent: the
        # order a user's items must be forwarded in is the order they were committed.
        for b in range(30):
            if b % 7 == 3:
                user = mine[b % len(mine)]
                update_id = f"{user}#{b}p"
                await queue_profile(pool, app, user, update_id)
                sent[user].append(update_id)
            batch = [event(f"{u}#{b}.{j}", u, "tap") for u in mine for j in range(2)]
            await store.insert_events(pool, app, rows(app, batch), datetime.now(timezone.utc))
            for e in batch:
                sent[e.user_id].append(e.event_id)
            for d, _ in replicas:
                d.wake()
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(producer(users[k::4], k) for k in range(4)))
        total = sum(len(v) for v in sent.values())
        events_total = sum(1 for v in sent.values() for i in v if not i.endswith("p"))
        await eventually(lambda: _at_least(fakes, total, events_total), timeout=20)
        # A replica deletes what it forwarded after the consumer answered: wait for that commit
        # too, or the check below races the last batch's delete.
        await eventually(lambda: _drained(pool), timeout=20)
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
        ids = [item for _, _, _, item in recorder.items]
        assert len(ids) == len(set(ids)), f"{name} received a row twice"
        seen: dict[str, list[str]] = defaultdict(list)
        for _, _, user, item in recorder.items:
            seen[user].append(item)
        assert seen == expected, f"{name} saw a user's items out of order"
    # Both replicas took part (otherwise this would not test concurrent replicas).
    for d, _ in replicas:
        assert d.forwarded > 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def _at_least(fakes: Consumers, seg_total: int, dec_total: int) -> bool:
    return len(fakes.segmentation.items) >= seg_total and len(fakes.decision.items) >= dec_total


async def _drained(pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM outbox") == 0


# ---------------------------------------------------------------- consumers down, refusing


async def test_rows_wait_for_a_consumer_that_is_down_and_drain_when_it_is_back(pool):
    fakes = Consumers()
    await fakes.start()
    port = fakes.port
    await fakes.stop()
    app = "app_down"
    d, peers = dispatcher(pool, f"127.0.0.1:{port}", workers=1)
    task = asyncio.create_task(d.run())
    try:
        await store.insert_events(pool, app, rows(app, [event(f"w{i}", f"u{i % 3}", "tap") for i in range(9)]),
                                  datetime.now(timezone.utc))
        d.wake()
        await asyncio.sleep(0.5)
        backlog, age = await store.backlog(pool)
        assert backlog == {"segmentation": 9, "decision": 9, "delivery": 9} and age["segmentation"] > 0
        # Back on the same port: the loops' retries find it.
        fakes = Consumers()
        fakes.port = port
        await fakes.start()
        await eventually(lambda: _at_least(fakes, 9, 9), timeout=10)

        async def drained() -> bool:
            return (await store.backlog(pool))[0] == {"segmentation": 0, "decision": 0, "delivery": 0}

        # Each consumer's loops retry on their own backoff: all drain, not at the same moment.
        await eventually(drained, timeout=10)
        assert sorted(i for *_, i in fakes.decision.items) == sorted(f"w{i}" for i in range(9))
        assert sorted(i for *_, i in fakes.delivery.items) == sorted(f"w{i}" for i in range(9))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for p in peers:
            await p.close()
        await fakes.stop()


async def test_rows_a_consumer_refuses_are_set_aside_and_the_lane_moves_on(pool):
    fakes = Consumers()
    await fakes.start()
    fakes.decision.refuse = {"bad"}
    app = "app_refused"
    failures = FailureSettings(max_attempts=2, hold_initial_seconds=0.001, hold_maximum_seconds=0.001)
    d, peers = dispatcher(pool, fakes.target, workers=1, failures=failures)
    try:
        now = datetime.now(timezone.utc)
        await store.insert_events(pool, app, rows(app, [event("bad", "same", "tap")]), now)
        await store.insert_events(pool, app, rows(app, [event("good", "same", "tap")]), now)
        await d.drain_once("decision")
        # Refused once: kept, and the user's later event waits behind it.
        assert fakes.decision.items == []
        for _ in range(3):
            await asyncio.sleep(0.01)  # past the app's hold
            await d.drain_once("decision")
        assert [i for *_, i in fakes.decision.items] == ["good"]
        left = await pool.fetch("SELECT consumer, items FROM outbox WHERE app_id = $1 ORDER BY consumer", app)
        # The other consumers' copies wait for their own loops; decision's refused item is set aside.
        assert [(r["consumer"], r["items"]) for r in left] == [("delivery", 1), ("delivery", 1),
                                                                ("segmentation", 1), ("segmentation", 1)]
        dead = await pool.fetch("SELECT consumer, user_ids, error, attempts FROM dead_letters WHERE app_id = $1", app)
        assert [(r["consumer"], r["user_ids"], r["error"], r["attempts"]) for r in dead] == [
            ("decision", ["same"], "INVALID_ARGUMENT: refused", 2)]
        assert d.dead_lettered == 1
    finally:
        for p in peers:
            await p.close()
        await fakes.stop()


async def test_a_loop_claims_the_lanes_that_hold_rows(pool):
    """A loop claims a share of the lanes; woken for a new row, it must claim that row's lane
    (not empty ones), or the row waits for the next poll."""
    fakes = Consumers()
    await fakes.start()
    app = "app_lanes"
    d, peers = dispatcher(pool, fakes.target, workers=4)  # a claim takes 4 of the 16 lanes
    try:
        users = {lane_of(app, f"u{i}"): f"u{i}" for i in range(400)}
        assert len(users) == 16
        for lane, user in sorted(users.items()):
            await store.insert_events(pool, app, rows(app, [event(f"e{lane}", user, "tap")]),
                                      datetime.now(timezone.utc))
            assert await d.drain_once("decision") == (1, False), f"lane {lane}"
    finally:
        for p in peers:
            await p.close()
        await fakes.stop()


# ---------------------------------------------------------------- erasure of rows in flight


async def test_erasing_a_user_removes_their_items_from_rows_not_yet_forwarded(pool):
    fakes = Consumers()
    await fakes.start()
    app = "app_erase"
    # Users that share a lane with the erased one, so rows are rewritten rather than dropped.
    gone = "gone"
    neighbours = [u for u in (f"n{i}" for i in range(400)) if lane_of(app, u) == lane_of(app, gone)][:2]
    now = datetime.now(timezone.utc)
    await store.insert_events(pool, app, rows(app, [event("g1", gone, "tap"), event("a1", neighbours[0], "tap"),
                                                    event("g2", gone, "tap"), event("b1", neighbours[1], "tap")]), now)
    await store.insert_events(pool, app, rows(app, [event("g3", gone, "tap")]), now)
    await queue_profile(pool, app, gone, "gp")
    await store.erase_user(pool, app, gone, lane_of(app, gone))
    assert await pool.fetchval("SELECT count(*) FROM events WHERE app_id = $1 AND user_id = $2", app, gone) == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE $1 = any(user_ids)", gone) == 0
    d, peers = dispatcher(pool, fakes.target, workers=1)
    try:
        for consumer in store.CONSUMERS:
            await d.drain_once(consumer)
        assert [i for *_, i in fakes.segmentation.items] == ["a1", "b1"]
        assert [i for *_, i in fakes.decision.items] == ["a1", "b1"]
    finally:
        for p in peers:
            await p.close()
        await fakes.stop()


async def test_erasure_waits_for_a_dispatch_in_progress_on_the_users_lane(pool):
    """A row being forwarded when DeleteUser runs is delivered first, then erasure proceeds:
    the erase calls that follow can no longer be overtaken by it."""
    fakes = Consumers(delay=0.3, jitter=False)
    await fakes.start()
    app = "app_inflight"
    await store.insert_events(pool, app, rows(app, [event("f1", "flying", "tap")]), datetime.now(timezone.utc))
    d, peers = dispatcher(pool, fakes.target, workers=1)
    try:
        sending = asyncio.create_task(d.drain_once("decision"))
        await asyncio.sleep(0.1)  # the loop holds the lane, its call is on the wire
        await store.erase_user(pool, app, "flying", lane_of(app, "flying"))
        erased_at = time.monotonic()
        await sending
        assert [i for *_, i in fakes.decision.items] == ["f1"]
        assert fakes.decision.answered_at < erased_at, "erasure went ahead while the lane was being forwarded"
        # Segmentation's copy was not on the wire: it is gone.
        await d.drain_once("segmentation")
        assert fakes.segmentation.items == []
    finally:
        for p in peers:
            await p.close()
        await fakes.stop()


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
            # 8, and the "late" event when it got in before the first refresh saw the backlog.
            assert registry.get_sample_value("nudge_ingestion_outbox_backlog", {"consumer": "segmentation"}) >= 8
            assert registry.get_sample_value("nudge_ingestion_backpressure_refusals_total", {"reason": "backlog"}) >= 2
            # Once the backlog is gone (here: cleared by hand), events are taken again.
            await pool.execute("DELETE FROM outbox")

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


async def test_the_sql_framing_matches_protobuf(pool):
    lengths = [0, 1, 127, 128, 129, 300, 16383, 16384, 16385, 32 * 1024, 100_000]
    headers = await pool.fetch("SELECT n, pb_item_header(n) AS h FROM unnest($1::int[]) AS n", lengths)
    assert {r["n"]: bytes(r["h"]) for r in headers} == {n: item_header(n) for n in lengths}
