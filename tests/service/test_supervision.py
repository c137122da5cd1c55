"""Background loops are supervised: a bug turns the service NOT_SERVING and its process exits
non-zero; the database going away is waited out, and the loop works again when it is back."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from structlog.testing import capture_logs

from nudgelib import db
from nudgelib.clock import FixedClock
from nudgelib.loops import Loop
from nudgelib.retention import Retention, prune_loop
from nudgetools import embedded
from services.segmentation.server import SPEC as SEGMENTATION
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import sibling_url

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_a_loop_that_meets_a_bug_turns_the_service_not_serving_for_good(database_url):
    bug = asyncio.Event()

    async def step() -> None:
        if bug.is_set():
            raise KeyError("a bug")

    async def wire(host, settings) -> None:
        await SEGMENTATION.wire(host, settings)
        host.run_in_background(Loop("buggy", step, poll=0.02).run(), "buggy")

    host = await start_host(replace(SEGMENTATION, wire=wire), database_url, {})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def status(service: str = "") -> int:
                return (await health.Check(health_pb2.HealthCheckRequest(service=service))).status

            assert await status() == SERVING
            with capture_logs() as logs:
                bug.set()

                async def not_serving() -> bool:
                    return await status() == NOT_SERVING

                await eventually(not_serving, timeout=5)
            assert await status("nudge.segmentation.v1.SegmentationService") == NOT_SERVING
            assert isinstance(host.failure, KeyError)
            assert [e["loop"] for e in logs if e["event"] == "loop_crashed"] == ["buggy"]
            assert [e["task"] for e in logs if e["event"] == "background_task_failed"] == ["buggy"]
            # The database answers, yet the service stays NOT_SERVING until it is restarted.
            await asyncio.sleep(0.2)
            assert await status() == NOT_SERVING
    finally:
        await host.stop()


# The real entry point (nudgelib.server.main) with one loop more, which meets a bug on its
# second round, once the service is up.
BUGGY_SERVICE = """
from dataclasses import replace

from nudgelib.loops import Loop
from nudgelib.server import main
from services.segmentation.server import SPEC

rounds = 0


async def step():
    global rounds
    rounds += 1
    if rounds > 1:
        raise KeyError("a bug")


async def wire(host, settings):
    await SPEC.wire(host, settings)
    host.run_in_background(Loop("buggy", step, poll=0.5).run(), "buggy")


main(replace(SPEC, wire=wire))
"""


def test_the_process_of_a_service_whose_loop_meets_a_bug_exits_non_zero(database_url):
    env = {"PATH": "", "DATABASE_URL": database_url, "NUDGE_INTERNAL_TOKEN": INTERNAL_TOKEN,
           "NUDGE_SEGMENTATION_PORT": "0", "NUDGE_SEGMENTATION_METRICS_PORT": "0", "NUDGE_DECISION_ADDR": "127.0.0.1:9",
           "NUDGE_LOG_FORMAT": "json", "NUDGE_SHUTDOWN_GRACE_SECONDS": "1"}
    result = subprocess.run([sys.executable, "-c", BUGGY_SERVICE], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "service_started" in events and events[-1] == "service_stopped"
    crashed = next(line for line in lines if line["event"] == "loop_crashed")
    assert crashed["loop"] == "buggy" and "KeyError: 'a bug'" in crashed["exception"]
    assert next(line for line in lines if line["event"] == "background_task_failed")["task"] == "buggy"


async def test_a_loop_waits_out_a_database_that_refuses_connections_then_works_again(database_url):
    """Retention's loop (decision's and segmentation's pruning), on a database of its own
    that stops accepting connections for a while, its open connections cut."""
    url = sibling_url(database_url, "nudge_loops")
    await embedded.ensure_database(url)
    admin = await asyncpg.connect(database_url)
    setup = await asyncpg.connect(url)
    await setup.execute("CREATE TABLE IF NOT EXISTS kept (at timestamptz NOT NULL); TRUNCATE kept")
    await setup.close()
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    pool = await db.create_pool(url, "public", 1, 2)
    task = asyncio.create_task(prune_loop(pool, FixedClock(now), [Retention("kept", "at", timedelta(days=1), key=("at",))], 0.05))

    async def pruned() -> bool:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT count(*) FROM kept") == 0
        finally:
            await conn.close()

    async def insert_old_row() -> None:
        conn = await asyncpg.connect(url)
        await conn.execute("INSERT INTO kept VALUES ($1)", now - timedelta(days=2))
        await conn.close()

    async def allow(connections: bool) -> None:
        await admin.execute(f"ALTER DATABASE nudge_loops WITH ALLOW_CONNECTIONS {str(connections).lower()}")

    try:
        with capture_logs() as logs:
            await insert_old_row()
            await eventually(pruned)
            await allow(False)
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'nudge_loops'")

            async def failing() -> bool:
                return any(e["event"] == "loop_step_failed" and e["loop"] == "prune" for e in logs)

            await eventually(failing, timeout=5)
            await asyncio.sleep(0.2)  # a few rounds, all failing
            assert not task.done()
            await allow(True)
            await insert_old_row()
            await eventually(pruned)
        assert any(e["event"] == "loop_recovered" and e["loop"] == "prune" for e in logs)
        assert not any(e["event"] == "loop_crashed" for e in logs)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await allow(True)
        await pool.close()
        await admin.close()
