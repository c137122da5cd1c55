"""End to end through the four service processes: events keep flowing while segmentation is
killed and restarted, and a deletion is not undone by events still waiting in the outbox."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from google.protobuf import duration_pb2

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib.config import SERVICES
from nudgetools import demo
from nudgetools.cluster import Cluster
from tests.e2e.conftest import running
from tests.conftest import eventually
from tests.helpers import Clients, create_app, event, expect_error, log_drained, track

pytestmark = pytest.mark.e2e

USERS = 12
PER_USER = 40
BATCHES = 20


@pytest.fixture(scope="module")
async def cluster(database_url, tmp_path_factory):
    # Retry a consumer that is down every half second at most, so the test is quick.
    async with running(database_url, tmp_path_factory.mktemp("ingestion-e2e-logs"),
                       NUDGE_INGESTION_OUTBOX_MAX_BACKOFF_SECONDS="0.5") as c:
        yield c


@pytest.fixture(scope="module")
async def api(cluster):
    opened = {n: grpc.aio.insecure_channel(cluster.target(n)) for n in SERVICES}
    yield Clients(opened.__getitem__)
    for ch in opened.values():
        await ch.close()


async def restart(cluster: Cluster, name: str) -> None:
    cluster.start((name,))
    await cluster.wait_ready(timeout=60, names=(name,))


async def test_segmentation_killed_while_events_flow_gets_every_event_exactly_once(cluster, api, database_url):
    app = await create_app(database_url)
    # Decision records (and deduplicates) the events a campaign reacts to: a send a day after
    # each tap.
    campaign = demo.welcome_campaign("unused")
    campaign.audience.ClearField("include_segment_ids")
    campaign.status, campaign.delivery_mode = decision_pb.CAMPAIGN_STATUS_ACTIVE, decision_pb.DELIVERY_MODE_TRIGGERED
    campaign.triggers.add(event_name="tap", delay=duration_pb2.Duration(seconds=86400))
    await api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(campaign=campaign), metadata=app.auth("admin"))
    users = [f"k{i}" for i in range(USERS)]
    per_batch = USERS * PER_USER // BATCHES
    events = [event(f"kill-{n}", users[n % USERS], "tap") for n in range(USERS * PER_USER)]
    batches = [events[i:i + per_batch] for i in range(0, len(events), per_batch)]
    killed = asyncio.Event()

    async def produce():
        async def stream():
            for i, batch in enumerate(batches):
                yield pb.StreamEventsRequest(batch_id=f"b{i}", events=batch)
                if i == BATCHES // 4:
                    # Segmentation dies mid-flow, without a chance to finish what it holds.
                    cluster.processes["segmentation"].kill()
                    await asyncio.to_thread(cluster.processes["segmentation"].wait)
                    killed.set()
                await asyncio.sleep(0.02)

        acks = [ack async for ack in api.ingestion.StreamEvents(stream(), metadata=app.auth("events"))]
        assert [a.accepted_count for a in acks] == [per_batch] * BATCHES
        # A producer that did not see its acknowledgements retries a few batches: no effect.
        for batch in batches[3:7]:
            reply = await api.ingestion.TrackEvents(track(batch), metadata=app.auth("events"))
            assert reply.duplicate_count == per_batch

    await produce()
    assert killed.is_set()
    await restart(cluster, "segmentation")
    await eventually(lambda: log_drained(database_url, app.id), timeout=30)

    # Every user has exactly PER_USER taps in segmentation: none lost, none counted twice.
    async def audience(operator: int, count: int) -> int:
        rule = seg_pb.Rule(event=seg_pb.EventCondition(name="tap", operator=operator, count=count))
        return (await api.segmentation.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=rule),
                                                        metadata=app.auth("admin"))).user_count

    assert await audience(seg_pb.EVENT_OPERATOR_EXACTLY, PER_USER) == USERS
    assert await audience(seg_pb.EVENT_OPERATOR_AT_LEAST, PER_USER + 1) == 0
    conn = await asyncpg.connect(database_url)
    try:
        # Decision, never down, saw each event once, and started one send for each.
        assert await conn.fetchval("SELECT count(*) FROM decision.pending_sends WHERE app_id = $1",
                                   app.id) == len(events)
        assert await conn.fetchval("SELECT count(*) FROM ingestion.events WHERE app_id = $1", app.id) == len(events)
    finally:
        await conn.close()


async def test_deletion_is_not_undone_by_events_waiting_for_a_consumer(cluster, api, database_url):
    app = await create_app(database_url)

    async def profile(user_id: str):
        try:
            return (await api.segmentation.GetUserProfile(seg_pb.GetUserProfileRequest(user_id=user_id),
                                                          metadata=app.auth("admin"))).profile
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    assert cluster.stop("segmentation") == {"segmentation": 0}
    try:
        # Events of two users wait in the log while segmentation is down.
        await api.ingestion.TrackEvents(track([event("w1", "gone", "tap"), event("w2", "stays", "tap"),
                                               event("w3", "gone", "tap")]), metadata=app.auth("events"))
        await api.ingestion.Identify(pb.IdentifyRequest(user_id="gone", locale="fr-FR"), metadata=app.auth("events"))
        # Ingestion erases what it holds, then cannot reach segmentation: the caller is told
        # to retry, and nothing of the user will be forwarded meanwhile.
        await expect_error(api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="gone"), metadata=app.auth("admin")),
                           grpc.StatusCode.UNAVAILABLE)
    finally:
        await restart(cluster, "segmentation")
    reply = await api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="gone"), metadata=app.auth("admin"))
    assert reply.completed
    await eventually(lambda: log_drained(database_url, app.id), timeout=30)
    # The other user's event came through; the deleted user's never did.
    assert (await eventually(lambda: profile("stays"), timeout=10)).known
    assert await profile("gone") is None
