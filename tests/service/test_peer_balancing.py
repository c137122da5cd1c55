"""Between services: a peer given as a list of replicas gets calls round robin over all of
them, and a server's connection age makes a client reconnect (and so re-resolve, and find
replicas started since), with calls in flight unharmed."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from nudgelib.clients import Peer
from nudgelib.config import peer_target
from nudgelib.server import server_options
from tests.conftest import settings_for


class Counting(HealthServicer):
    """Health that counts the calls it answers, and who made them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.peers: Counter[str] = Counter()

    async def Check(self, request, context):
        self.calls += 1
        self.peers[context.peer()] += 1
        return await super().Check(request, context)


async def serve(options) -> tuple[grpc.aio.Server, Counting, int]:
    server = grpc.aio.server(options=options)
    health = Counting()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, health, port


async def test_a_list_of_replicas_gets_calls_round_robin():
    replicas = [await serve([]) for _ in range(3)]
    target = peer_target("NUDGE_DECISION_ADDR", ",".join(f"127.0.0.1:{port}" for _, _, port in replicas))
    peer = Peer("decision", target, "t" * 16)
    try:
        stub = health_pb2_grpc.HealthStub(peer.channel)
        for _ in range(30):
            await peer.call(stub.Check, health_pb2.HealthCheckRequest())
        # Round robin from whichever replica was connected first: about a third each.
        assert sum(h.calls for _, h, _ in replicas) == 30
        assert all(8 <= h.calls <= 12 for _, h, _ in replicas), [h.calls for _, h, _ in replicas]
        # One replica goes away: the others share its part, and every call is answered.
        await replicas[0][0].stop(0)
        before = [h.calls for _, h, _ in replicas]
        for _ in range(20):
            await peer.call(stub.Check, health_pb2.HealthCheckRequest())
        after = [h.calls - b for (_, h, _), b in zip(replicas, before)]
        assert after[1] + after[2] >= 19 and min(after[1:]) >= 5, after
    finally:
        await peer.close()
        for server, _, _ in replicas:
            await server.stop(0)


async def test_a_connection_older_than_the_maximum_age_is_replaced():
    settings = replace(settings_for("decision", "postgresql://unused", {}), max_connection_age=0.3,
                       max_connection_age_grace=5.0)
    server, health, port = await serve(server_options(settings))
    peer = Peer("decision", f"127.0.0.1:{port}", "t" * 16)
    try:
        stub = health_pb2_grpc.HealthStub(peer.channel)
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        while loop.time() < end:
            await peer.call(stub.Check, health_pb2.HealthCheckRequest())
            await asyncio.sleep(0.02)
        # Every call answered, over several connections (a new client port each).
        assert sum(health.peers.values()) == health.calls
        assert len(health.peers) >= 3, health.peers
    finally:
        await peer.close()
        await server.stop(0)
