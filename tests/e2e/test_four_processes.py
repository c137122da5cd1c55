"""End to end: the four real service processes, driven as a mobile backend and an operator
would, over real ports."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudgelib.config import SERVICES
from nudgetools import demo
from tests.conftest import eventually
from tests.e2e.conftest import running
from tests.helpers import Clients, create_app, event, expect_error, track, violated_fields

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
async def cluster(database_url, tmp_path_factory):
    async with running(database_url, tmp_path_factory.mktemp("service-logs")) as c:
        yield c


@pytest.fixture(scope="module")
async def channels(cluster):
    opened = {n: grpc.aio.insecure_channel(cluster.target(n)) for n in SERVICES}
    yield opened
    for ch in opened.values():
        await ch.close()


async def test_the_thin_path_through_four_processes(cluster, channels, database_url):
    app = await create_app(database_url)
    api = Clients(channels.__getitem__)
    segment_id, campaign_id = await demo.seed(cluster.target("segmentation"), cluster.target("decision"),
                                              app.keys["admin"])
    reply = await api.ingestion.TrackEvents(track([event("e1", "u1", "signup")]), metadata=app.auth("events"))
    assert reply.accepted_count == 1

    async def fetch(user):
        return (await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=user),
                                                 metadata=app.auth("client"))).messages

    (message,) = await eventually(lambda: fetch("u1"), timeout=15)
    assert (message.campaign_id, message.content.title) == (campaign_id, "Welcome to Nudge!")
    assert list(await fetch("u2")) == []
    recorded = await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="u1", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
        metadata=app.auth("client"))
    assert recorded.recorded
    stats = await api.delivery.GetCampaignStats(delivery_pb.GetCampaignStatsRequest(campaign_id=campaign_id),
                                                metadata=app.auth("admin"))
    assert [(v.sent, v.impressions) for v in stats.variants] == [(1, 1)]


async def test_app_isolation_and_bad_input(cluster, channels, database_url):
    a, b = await create_app(database_url), await create_app(database_url)
    api = Clients(channels.__getitem__)
    _, campaign_id = await demo.seed(cluster.target("segmentation"), cluster.target("decision"), a.keys["admin"])
    await expect_error(api.decision.GetCampaign(decision_pb.GetCampaignRequest(campaign_id=campaign_id),
                                                metadata=b.auth("admin")), grpc.StatusCode.NOT_FOUND)
    exc = await expect_error(api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=""),
                                                        metadata=a.auth("client")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"user_id"}


async def test_metrics_are_served_over_http(cluster, channels, database_url):
    app = await create_app(database_url)
    api = Clients(channels.__getitem__)
    await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="m1"), metadata=app.auth("client"))
    url = f"http://127.0.0.1:{cluster.metrics_ports['delivery']}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
    assert 'nudge_rpc_requests_total{code="OK",method="FetchMessages",service="delivery"}' in body


async def test_events_wait_for_segmentation_and_arrive_once_it_is_back(cluster, channels, database_url):
    app = await create_app(database_url)
    api = Clients(channels.__getitem__)
    await demo.seed(cluster.target("segmentation"), cluster.target("decision"), app.keys["admin"])
    assert cluster.stop("segmentation") == {"segmentation": 0}
    try:
        # Ingestion keeps accepting while segmentation is down: events are durable in its outbox.
        reply = await api.ingestion.TrackEvents(track([event("down1", "late", "signup")]), metadata=app.auth("events"))
        assert reply.accepted_count == 1
    finally:
        cluster.start(("segmentation",))
        await cluster.wait_ready(timeout=60, names=("segmentation",))

    async def fetch():
        return (await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="late"),
                                                 metadata=app.auth("client"))).messages

    assert len(await eventually(fetch, timeout=20)) == 1


async def test_health_goes_not_serving_on_sigterm(cluster):
    target = cluster.target("delivery")
    async with grpc.aio.insecure_channel(target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        os.kill(cluster.processes["delivery"].pid, signal.SIGTERM)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await asyncio.to_thread(cluster.processes["delivery"].wait, 20) == 0
