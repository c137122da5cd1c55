"""Ports for the services a test starts: the ones picked up front stay out of anyone else's
reach until the service binds them, and a service that cannot listen leaves nothing running
behind it (in a test process, its loops would go on acting on the shared database)."""

from __future__ import annotations

import asyncio
import errno
import socket
import urllib.request
from dataclasses import replace

import asyncpg
import grpc
import prometheus_client as prom
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from nudgelib.config import ConfigError
from nudgelib.metrics import serve_metrics
from nudgelib.server import SERVER_OPTIONS, ServiceHost
from nudgetools.cluster import cannot_listen, free_ports
from services.segmentation.server import SPEC as SEGMENTATION
from tests.conftest import settings_for, start_stack
from tests.helpers import own_database


async def test_picked_ports_are_refused_to_other_binds_and_open_to_the_servers():
    ports = free_ports(6)
    assert len(set(ports)) == 6
    for port in ports:
        # What a bind to port 0 (another test's server) or an outgoing connection would need.
        with socket.socket() as other, pytest.raises(OSError) as refused:
            other.bind(("127.0.0.1", port))
        assert refused.value.errno == errno.EADDRINUSE
        assert cannot_listen("127.0.0.1", port) is None

    server = grpc.aio.server(options=SERVER_OPTIONS)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    assert server.add_insecure_port(f"127.0.0.1:{ports[0]}") == ports[0]
    await server.start()
    metrics, _, metrics_port = serve_metrics(prom.CollectorRegistry(), "127.0.0.1", ports[1])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert metrics_port == ports[1]
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/metrics",
                                                                      timeout=10).status)
        assert page == 200
    finally:
        metrics.shutdown()
        await server.stop(0)


async def _connections(url: str) -> int:
    """Sessions open on the database of `url` but this one."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


async def test_a_service_whose_metrics_port_is_taken_stops_and_leaves_nothing_running(database_url):
    # A database of its own: whatever the failed service left behind would show as sessions
    # on it (its pool, its listeners, its loops' queries), apart from the session's stack.
    async with own_database(database_url, "ports") as url:
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            taken = held.getsockname()[1]
            host = ServiceHost(replace(settings_for("segmentation", url, dict.fromkeys(SEGMENTATION.peers, "127.0.0.1:9")),
                                       metrics_port=taken), SEGMENTATION)
            with pytest.raises(ConfigError, match=f"^NUDGE_SEGMENTATION_METRICS_PORT: cannot listen on 127.0.0.1:{taken}"):
                await host.start()
        # Its loops and database listeners were ended, not left to run on in this process.
        assert await _connections(url) == 0
        # Nor is its gRPC port served.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_four_services_that_fail_to_start_half_way_leave_nothing_running(database_url):
    async def rewire(service: str, peers: dict[str, str]) -> dict[str, str]:
        if service == "delivery":  # after segmentation and decision are up
            raise RuntimeError("delivery cannot be wired")
        return peers

    async with own_database(database_url, "ports") as url:
        with pytest.raises(RuntimeError, match="delivery cannot be wired"):
            await start_stack(url, rewire)
        assert await _connections(url) == 0
