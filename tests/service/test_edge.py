"""The edge in front of the session's services: Envoy from the wheel, its configuration
rendered from the repo's template. Public services answer through its one port, internal ones
and health do not (even with the internal token)."""

from __future__ import annotations

import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nudge.delivery.v1 import delivery_internal_service_pb2 as internal_pb
from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as internal_grpc
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudgelib.config import SERVICES
from nudgetools.cluster import free_ports
from nudgetools.edge import Edge
from tests.conftest import INTERNAL_TOKEN
from tests.helpers import Clients, create_campaign, event, expect_error, fetch_messages, make_campaign, track


@pytest.fixture
async def edge(stack, tmp_path):
    e = Edge(*free_ports(2), tmp_path / "envoy.yaml")
    e.write_config({name: [stack.target(name)] for name in SERVICES})
    process = subprocess.Popen(e.command(), stdout=subprocess.DEVNULL, stderr=open(tmp_path / "envoy.log", "wb"))
    try:
        await e.wait_ready(alive=lambda: process.poll() is None)
        yield e
    finally:
        process.terminate()
        process.wait()


async def test_every_public_service_answers_through_the_edge_and_nothing_else_does(edge, app):
    async with grpc.aio.insecure_channel(edge.target) as channel:
        api = Clients(lambda _: channel)
        await create_campaign(api, app, make_campaign("Through the edge"))
        reply = await api.ingestion.TrackEvents(track([event("edge-e1", "edge-u1", "signup")]),
                                                metadata=app.auth("events"), timeout=5)
        assert reply.accepted_count == 1
        (message,) = await fetch_messages(api, app, "edge-u1")
        assert message.content.title == "Welcome to Nudge!"  # make_campaign's content
        # Errors come back as the service gave them.
        await expect_error(api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=""),
                                                      metadata=app.auth("client"), timeout=5),
                           grpc.StatusCode.INVALID_ARGUMENT)

        # An internal service shares its package's prefix, and still is not routed: not even
        # the internal token opens it from outside.
        internal = internal_grpc.DeliveryInternalServiceStub(channel)
        await expect_error(internal.EraseUser(internal_pb.EraseUserRequest(app_id=app.id, user_id="edge-u1"),
                                              metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),), timeout=5),
                           grpc.StatusCode.UNIMPLEMENTED)
        await expect_error(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5),
                           grpc.StatusCode.UNIMPLEMENTED)
    # The edge's counters: the calls reached delivery's cluster.
    stats = await edge.stats()
    assert stats["cluster.delivery.upstream_rq_total"] >= 2
    assert (await edge.membership())["delivery"] == (1, 1)
