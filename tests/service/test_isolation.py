"""No tenant can stall another: a poisoned campaign in app A (a row that today's validation
would refuse, written straight into decision's table, as a bug would leave it) makes
decision fail on A's trigger events and on A's due sends. App B's triggered message is still
released and fetched, B's events are still accepted while A's pile up past the backpressure
bound, and A's failing items end up set aside with their error after the bounded retries,
counted and kept for an operator."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudgelib import db
from nudgelib.dead_letters import FailureSettings
from nudgelib.eventlog.dispatcher import LogDispatcher, Run, Target
from nudgelib.eventlog.lanes import lane_of
from nudgelib.isolation import Policy
from nudgetools.cluster import free_ports
from services.decision.server import SPEC as DECISION
from services.decision.settings import DecisionSettings
from services.delivery.server import SPEC as DELIVERY
from services.delivery.settings import DeliverySettings
from services.ingestion.server import SPEC as INGESTION
from services.ingestion.settings import IngestionSettings
from services.segmentation import announcements
from services.segmentation.server import SPEC as SEGMENTATION
from services.segmentation.settings import SegmentationSettings
from services.segmentation.store import memberships
from tests.conftest import Stack, eventually, start_host
from tests.helpers import Clients, create_app, event, make_campaign, own_database, track

# Three failures alone, then a dead letter; an app whose items failed waits 0.3 s, then 0.6 s.
FAILURES = FailureSettings(max_attempts=3, hold_initial_seconds=0.3, hold_maximum_seconds=0.6)
BACKLOG_BOUND = 3
TEN_THOUSAND_YEARS = duration_pb2.Duration(seconds=10_000 * 365 * 86_400)


@pytest.fixture(scope="module")
async def own_url(database_url):
    """A database of this module's own: the session's services must not act on its rows."""
    async with own_database(database_url, "nudge_isolation") as url:
        yield url


@pytest.fixture
async def isolated_stack(own_url):
    settings = {
        "segmentation": replace(SegmentationSettings(), failures=FAILURES),
        "decision": replace(DecisionSettings(), failures=FAILURES, release_poll_seconds=0.05),
        "delivery": replace(DeliverySettings(), failures=FAILURES),
        "ingestion": replace(IngestionSettings(), failures=FAILURES, outbox_poll_interval=0.05,
                             max_backlog_events=BACKLOG_BOUND, pressure_refresh_interval=0.05),
    }
    specs = {"segmentation": SEGMENTATION, "decision": DECISION, "delivery": DELIVERY, "ingestion": INGESTION}
    ports = dict(zip(specs, free_ports(4)))
    peers = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    stack = Stack()
    try:
        for name, spec in specs.items():
            spec = replace(spec, settings=lambda _env, s=settings[name]: s)
            stack.hosts[name] = await start_host(spec, own_url, {n: a for n, a in peers.items() if n != name},
                                                 ports[name])
        yield stack
    finally:
        await stack.stop()


async def poison(url: str, app_id: str, campaign_id: str, change) -> None:
    """Rewrites a stored campaign behind validation's back, and tells decision to reload."""
    conn = await asyncpg.connect(url)
    try:
        blob = await conn.fetchval("SELECT definition FROM decision.campaigns WHERE app_id = $1 AND id = $2",
                                   app_id, campaign_id)
        campaign = decision_pb.Campaign.FromString(blob)
        change(campaign)
        await conn.execute("UPDATE decision.campaigns SET definition = $3 WHERE app_id = $1 AND id = $2",
                           app_id, campaign_id, campaign.SerializeToString())
        await conn.execute("SELECT pg_notify('nudge_campaigns', $1)", app_id)
    finally:
        await conn.close()


def users_in_lane(app_id: str, lane: int, prefix: str, n: int) -> list[str]:
    found = (f"{prefix}{i}" for i in range(10_000) if lane_of(app_id, f"{prefix}{i}") == lane)
    return [next(found) for _ in range(n)]


def metric(stack: Stack, service: str, name: str, labels: dict[str, str] | None = None) -> float:
    return stack.hosts[service].registry.get_sample_value(name, labels or {}) or 0.0


async def test_a_poisoned_campaign_in_one_app_stalls_no_other_app(isolated_stack, own_url):
    stack = isolated_stack
    api = Clients(stack.channel)
    a, b = await create_app(own_url), await create_app(own_url)

    def with_huge_delay(c: decision_pb.Campaign) -> None:
        c.triggers[0].delay.CopyFrom(TEN_THOUSAND_YEARS)

    def with_broken_window(c: decision_pb.Campaign) -> None:
        c.send_window.start_minute, c.send_window.end_minute = 100_000, 0

    delayed = (await api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(
        campaign=make_campaign("A delayed", "poison")), metadata=a.auth("admin"))).campaign
    windowed = (await api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(
        campaign=make_campaign("A windowed", "late")), metadata=a.auth("admin"))).campaign
    await api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(campaign=make_campaign("B", "buy")),
                                      metadata=b.auth("admin"))
    # No wait for decision to hear of it (NOTIFY): nothing has asked decision about A yet, so
    # it holds no catalog of A's to drop, and its first read (for A's first event) reads these.
    await poison(own_url, a.id, delayed.id, with_huge_delay)
    await poison(own_url, a.id, windowed.id, with_broken_window)

    # A's trigger events, past the backlog bound, in the very lane B's user is in; then an
    # event whose send decision will fail to judge when it comes due.
    lane = lane_of(b.id, "b1")
    poisoned = users_in_lane(a.id, lane, "a", BACKLOG_BOUND + 1)
    await api.ingestion.TrackEvents(track([event(f"p{n}", u, "poison") for n, u in enumerate(poisoned)]),
                                    metadata=a.auth("events"))
    await api.ingestion.TrackEvents(track([event("late1", "a_late", "late")]), metadata=a.auth("events"))

    # A is refused for its own backlog; B is not.
    async def a_refused() -> bool:
        try:
            await api.ingestion.TrackEvents(track([event(f"n{secrets.token_hex(3)}", "zz", "noop")]),
                                            metadata=a.auth("events"))
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return False

    conn = await asyncpg.connect(own_url)
    try:
        async def refused_past_the_bound() -> bool:
            """A refused, its backlog kept past the bound until then: ingestion counts the
            backlog at most every fifty times a count's own duration, a second or more on a
            loaded machine, and A's first failing event may be set aside (about 1 s of
            retries) before a count sees it; so each time one is, another joins the lane."""
            if await a_refused():
                return True
            set_aside = await conn.fetchval("SELECT count(*) FROM ingestion.dead_letters WHERE app_id = $1", a.id)
            if set_aside and len(poisoned) - set_aside <= BACKLOG_BOUND + 1:
                user = users_in_lane(a.id, lane, "a", len(poisoned) + 1)[-1]
                try:
                    await api.ingestion.TrackEvents(track([event(f"p{len(poisoned)}", user, "poison")]),
                                                    metadata=a.auth("events"))
                except grpc.aio.AioRpcError as exc:
                    return exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                poisoned.append(user)
            return False

        await eventually(refused_past_the_bound, timeout=15)
    finally:
        await conn.close()
    accepted = await api.ingestion.TrackEvents(track([event("buy1", "b1", "buy")]), metadata=b.auth("events"))
    assert accepted.accepted_count == 1

    async def b_message():
        reply = await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="b1"),
                                                 metadata=b.auth("client"))
        return reply.messages

    # Well before A's items have used up their retries: B is not waiting behind them.
    (message,) = await eventually(b_message, timeout=5)
    assert message.content.title == "Welcome to Nudge!"

    # A's failing items are set aside after three failures each, with the consumer's error.
    conn = await asyncpg.connect(own_url)
    try:
        async def dead_letters():
            rows = await conn.fetch("SELECT consumer, user_ids, error, attempts FROM ingestion.dead_letters"
                                    " WHERE app_id = $1 ORDER BY id", a.id)
            return rows if len(rows) == len(poisoned) else None

        dead = await eventually(dead_letters, timeout=10)
        assert sorted(r["user_ids"][0] for r in dead) == sorted(poisoned)
        assert {(r["consumer"], r["attempts"]) for r in dead} == {("decision", 3)}
        assert all(r["error"].startswith(("INTERNAL", "UNKNOWN")) for r in dead)

        async def failed_send():
            return await conn.fetchrow("SELECT status, outcome FROM decision.pending_sends"
                                       " WHERE app_id = $1 AND campaign_id = $2 AND status <> 'pending'",
                                       a.id, windowed.id)

        settled = await eventually(failed_send, timeout=10)
        assert settled["status"] == "failed" and settled["outcome"]
        assert await conn.fetchval("SELECT count(*) FROM ingestion.dead_letters WHERE app_id = $1", b.id) == 0
    finally:
        await conn.close()
    def dead_lettered() -> float:
        return metric(stack, "ingestion", "nudge_log_dead_lettered_total", {"log": "ingestion", "consumer": "decision"})

    # The log's reader counts what it set aside once its cycle's transaction is over: a moment
    # after the rows above could be read.
    await eventually(lambda: asyncio.sleep(0, dead_lettered() >= len(poisoned)), timeout=5)
    assert dead_lettered() == len(poisoned)
    assert metric(stack, "decision", "nudge_decision_release_failed_total") == 1
    # The operator sees it: failed in the user's pending sends, and counted once in the
    # campaign's statistics, as dropped for FAILED.
    listed = await api.decision.ListPendingSends(decision_pb.ListPendingSendsRequest(user_id="a_late"),
                                                 metadata=a.auth("admin"))
    (send,) = [p for p in listed.pending_sends if p.campaign_id == windowed.id]
    assert send.state == decision_pb.PENDING_SEND_STATE_FAILED and send.reason
    stats = await api.delivery.GetCampaignStats(delivery_pb.GetCampaignStatsRequest(campaign_id=windowed.id),
                                                metadata=a.auth("admin"))
    assert sum(v.dropped_by_reason["FAILED"] for v in stats.variants) == 1

    # Once A's items are set aside, A's backlog is gone and A's events are accepted again.
    async def a_accepted() -> bool:
        return not await a_refused()

    # The backlog is counted again at most every 50x its own duration (PressureMonitor): on a
    # loaded machine that is seconds.
    await eventually(a_accepted, timeout=15)

    # Erasing a user takes their dead letters with them.
    erased = await api.ingestion.DeleteUser(ingestion_pb.DeleteUserRequest(user_id=poisoned[0]),
                                            metadata=a.auth("admin"))
    assert erased.completed
    conn = await asyncpg.connect(own_url)
    try:
        left = await conn.fetch("SELECT user_ids FROM ingestion.dead_letters WHERE app_id = $1", a.id)
    finally:
        await conn.close()
    assert sorted(r["user_ids"][0] for r in left) == sorted(poisoned[1:])


# ---------------------------------------------------------------- segmentation's log alone


def refusal(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="refused")


class Announcements:
    """Stands in for the consumer of segmentation's announcements: refuses calls that hold a
    poisoned payload with `code`, records what it takes."""

    def __init__(self, code: grpc.StatusCode = grpc.StatusCode.INTERNAL) -> None:
        self.code = code
        self.taken: list[tuple[str, bytes]] = []

    async def __call__(self, app_id: str, _kind: int, runs: list[Run]) -> None:
        payloads = [p for r in runs for p in r.payloads()]
        if any(p.startswith(b"poison") for p in payloads):
            raise refusal(self.code)
        self.taken += [(app_id, p) for p in payloads]

    def reader(self, pool, policy: Policy) -> LogDispatcher:
        async def ready(_timeout: float) -> bool:
            return True

        return LogDispatcher(pool, announcements.LOG, [Target("decision", (0, 1), self, ready)], workers=1,
                             policy=policy)


async def queue(pool, rows: list[tuple[str, str, bytes]]) -> None:
    # One lane for all: the test is about items of different apps and users sharing it.
    async with pool.acquire() as conn, conn.transaction():
        await memberships.begin_writing(conn)
        await memberships.queue(conn, [(0, app, user, announcements.CHANGE, payload) for app, user, payload in rows])


@pytest.fixture
async def segmentation_pool(own_url):
    p = await db.create_pool(own_url, "segmentation", 1, 3)
    await p.execute("TRUNCATE outbox, dead_letters, log_holds")
    await p.execute("UPDATE log_cursors SET position = 0")
    yield p
    await p.close()


async def test_a_poisoned_announcement_is_set_aside_and_other_apps_flow_meanwhile(segmentation_pool):
    pool = segmentation_pool
    consumer = Announcements()
    reader = consumer.reader(pool, Policy(max_attempts=3, hold_initial=0.01, hold_maximum=0.01))
    await queue(pool, [("A", "u1", b"poison-1"), ("A", "u1", b"u1-later"), ("A", "u2", b"u2-1"),
                       ("B", "v1", b"v1-1")])
    await reader.drain_once("decision")
    # B went at once; A waits in this lane behind its failing item (its users in other lanes
    # would not).
    assert consumer.taken == [("B", b"v1-1")]
    for _ in range(4):
        await asyncio.sleep(0.02)  # past A's hold
        await reader.drain_once("decision")
    # Refused three times in a row: set aside; A's later items followed, in order.
    assert consumer.taken[1:] == [("A", b"u1-later"), ("A", b"u2-1")]
    dead = await pool.fetch("SELECT consumer, app_id, user_ids, payload, error, attempts FROM dead_letters")
    assert [tuple(r) for r in dead] == [("decision", "A", ["u1"], b"poison-1", "INTERNAL: refused", 3)]
    # Taken and set aside: gone from the queue.
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_an_announcement_is_never_set_aside_while_its_consumer_is_down(segmentation_pool):
    pool = segmentation_pool
    consumer = Announcements(grpc.StatusCode.UNAVAILABLE)
    reader = consumer.reader(pool, Policy(max_attempts=1, hold_initial=0.01, hold_maximum=0.01))
    await queue(pool, [("A", "u1", b"poison-1")])
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await reader.drain_once("decision")
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0
    assert await pool.fetchval("SELECT count(*) FROM log_holds") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
